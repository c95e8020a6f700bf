/**
 * Repair of records that have more fields than the header because free text
 * holds the `\x01` separator (issue 14, "The real feed's rows": real
 * `application` and `application_detail` rows do, konsumer/epf-collector
 * 52914bb). Apple's EPFImporter silently cuts the surplus fields; we merge
 * them back only where the schema decides:
 *
 * 1. Arrangements that give the surplus fields to LONGTEXT columns (each
 *    merged field keeps its `\x01`), with every typed column (numbers, dates,
 *    booleans, decimals) parsing and every key column non-empty. Exactly one
 *    such arrangement: the row is repaired with it.
 * 2. None: the same with every text column (VARCHAR too) except key columns.
 * 3. Otherwise (none, or more than one) the row is rejected.
 *
 * Counting is a dynamic programme over (column, surplus used so far), so a
 * row costs O(columns x surplus^2) parses at worst, never one per arrangement.
 */

/** Most surplus fields a row may have and still be considered for repair. */
export const MAX_SURPLUS_FIELDS = 64;

/** How one column takes part in a repair. */
export interface RepairColumn {
  /** 'longtext' columns absorb surplus in pass 1; 'text' in pass 2; 'typed' never. */
  kind: 'longtext' | 'text' | 'typed';
  /** A key column: never absorbs surplus, never empty. */
  key: boolean;
  /** For 'typed' columns: whether the field text parses (empty = NULL is checked by the caller's `key`). */
  parses?: (text: string) => boolean;
}

/** The outcome of {@link repairFields}. */
export type RepairOutcome =
  | { fields: string[]; pass: 'longtext' | 'text' }
  | { reason: string };

/**
 * Merges `fields` (more than `columns.length`) back into one field per column.
 * @returns the repaired fields (merged ones hold `\x01`), or why it cannot be decided.
 */
export function repairFields(fields: readonly string[], columns: readonly RepairColumn[]): RepairOutcome {
  const n = columns.length;
  const surplus = fields.length - n;
  if (surplus <= 0) return { reason: `expected ${n} fields, got ${fields.length}` };
  const head = `expected ${n} fields, got ${fields.length}`;
  if (surplus > MAX_SURPLUS_FIELDS) return { reason: `${head}: more than ${MAX_SURPLUS_FIELDS} surplus fields, not repaired` };
  let ambiguous = 0;
  for (const pass of ['longtext', 'text'] as const) {
    const absorbs = columns.map((c) => !c.key && (c.kind === 'longtext' || (pass === 'text' && c.kind === 'text')));
    if (!absorbs.some(Boolean)) continue;
    const solver = new Solver(fields, columns, absorbs, surplus);
    const ways = solver.ways(0, 0);
    if (ways === 1) return { fields: solver.rebuild(), pass };
    if (ways > 1) {
      // More columns to choose from can only add arrangements: stop here.
      ambiguous = ways;
      break;
    }
  }
  if (ambiguous) {
    return { reason: `${head}: the ${surplus} surplus field(s) fit more than one text column (ambiguous), not repaired` };
  }
  return { reason: `${head}: no arrangement of the ${surplus} surplus field(s) into text columns makes every typed column parse` };
}

/** Counts arrangements (capped at 2) of surplus fields into absorbing columns. */
class Solver {
  private readonly memo = new Map<number, number>();

  constructor(
    private readonly fields: readonly string[],
    private readonly columns: readonly RepairColumn[],
    private readonly absorbs: readonly boolean[],
    private readonly surplus: number,
  ) {}

  /** Valid arrangements of columns i.. when `used` surplus fields went to columns before i (0, 1 or 2 = "2 or more"). */
  ways(i: number, used: number): number {
    if (i === this.columns.length) return used === this.surplus ? 1 : 0;
    const memoKey = i * (this.surplus + 1) + used;
    const known = this.memo.get(memoKey);
    if (known !== undefined) return known;
    let total = 0;
    const col = this.columns[i]!;
    const at = i + used;
    if (this.absorbs[i]) {
      for (let extra = 0; extra <= this.surplus - used && total < 2; extra++) total += this.ways(i + 1, used + extra);
    } else if (this.fits(col, this.fields[at]!)) {
      total = this.ways(i + 1, used);
    }
    total = Math.min(total, 2);
    this.memo.set(memoKey, total);
    return total;
  }

  private fits(col: RepairColumn, text: string): boolean {
    if (text === '') return !col.key;
    return col.kind !== 'typed' || (col.parses?.(text) ?? true);
  }

  /** The fields of the single valid arrangement (call only when ways(0, 0) === 1). */
  rebuild(): string[] {
    const out: string[] = [];
    let used = 0;
    for (let i = 0; i < this.columns.length; i++) {
      const at = i + used;
      let extra = 0;
      if (this.absorbs[i]) {
        while (this.ways(i + 1, used + extra) === 0) extra += 1;
      }
      out.push(this.fields.slice(at, at + extra + 1).join('\x01'));
      used += extra;
    }
    return out;
  }
}
