/**
 * Typed documents from EPF records.
 *
 * Types per `#dbTypes` (EPF.md, "Flat file format" and "Real table schemas";
 * issue 6, "The data model"):
 * - INTEGER, BIGINT (and other *INT): number; beyond 2^53 a BSON Long, never
 *   rounded; beyond 64 bits the row is rejected. `[1234]` (square brackets,
 *   seen in real exports per Apple's EPFParser) is 1234.
 * - DECIMAL/NUMERIC: Decimal128 (`decimal` mode) or the exact decimal text
 *   (`string` mode, for FerretDB v1 which closes the connection on Decimal128).
 * - DATETIME, DATE, TIMESTAMP: Date in UTC from `YYYY MM DD`,
 *   `YYYY MM DD HH:MM:SS` (dashes also accepted), `YYYY-MM-DD-hh:mm:ss-Etc/GMT`
 *   (also `-Etc/GMT+N`, POSIX sign: 5 hours behind UTC, `-GMT`, `-UTC`), or a
 *   bare year `YYYY` (January 1st); the forms Apple's EPFParser reads.
 * - BOOLEAN: boolean from 0/1/true/false.
 * - FLOAT/DOUBLE/REAL: number. Anything else (VARCHAR, LONGTEXT...): string.
 * - An empty field is null, whatever the type.
 * `_id` is the key column's value, or an object of the key columns in key order.
 * A record with more fields than columns is repaired when the schema decides
 * (see ./repair.ts) and counted as `repaired`.
 */
import mongoose from 'mongoose';
import { validateHeader, type EpfHeader } from './header.js';
import type { RawRecord } from './records.js';
import { repairFields, type RepairColumn } from './repair.js';

/** How DECIMAL columns are stored: BSON Decimal128, or the exact decimal text. */
export type DecimalMode = 'decimal128' | 'string';

/**
 * A converted row (`repaired` when surplus `\x01`-split fields were merged
 * back into text columns), or the reason it is rejected.
 */
export type ConvertResult = { doc: Record<string, unknown>; repaired?: true } | { reject: string };

type FieldConverter = (text: string) => unknown;

/** Thrown inside a field converter; becomes a reject reason. */
class BadValue extends Error {}

const { Long, Decimal128 } = mongoose.mongo;
const MAX_LONG = 2n ** 63n - 1n;
const MIN_LONG = -(2n ** 63n);

function toInteger(raw: string): unknown {
  // Apple's EPFParser strips square brackets around integers: `[1234]`.
  const text = raw.length > 2 && raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
  if (!/^[-+]?\d+$/.test(text)) throw new BadValue(`not an integer: ${JSON.stringify(text.slice(0, 40))}`);
  const n = Number(text);
  if (Number.isSafeInteger(n)) return n;
  const big = BigInt(text);
  if (big > MAX_LONG || big < MIN_LONG) throw new BadValue(`integer ${text} does not fit in 64 bits`);
  return Long.fromBigInt(big);
}

const DECIMAL_RE = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

function toDecimal(mode: DecimalMode): FieldConverter {
  return (text) => {
    if (!DECIMAL_RE.test(text)) throw new BadValue(`not a decimal: ${JSON.stringify(text.slice(0, 40))}`);
    if (mode === 'string') return text;
    try {
      return Decimal128.fromString(text);
    } catch (err) {
      throw new BadValue(`decimal ${text} does not fit Decimal128: ${(err as Error).message}`);
    }
  };
}

function toFloat(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new BadValue(`not a number: ${JSON.stringify(text.slice(0, 40))}`);
  return n;
}

const DATE_RE = /^(\d{4})[ -](\d{1,2})[ -](\d{1,2})(?:[ T-](\d{1,2})[: ](\d{2})(?:[: ](\d{2})(?:\.(\d{1,3}))?)?)?(?:-(?:Etc\/)?(GMT|UTC)([-+]\d{1,2})?)?$/;
const YEAR_RE = /^\d{4}$/;

function toDate(raw: string): Date {
  const text = raw.trim();
  if (YEAR_RE.test(text)) return new Date(Date.UTC(Number(text), 0, 1));
  const m = DATE_RE.exec(text);
  if (!m) throw new BadValue(`not a date (YYYY MM DD[ HH:MM:SS], YYYY-MM-DD-hh:mm:ss-Etc/GMT or YYYY): ${JSON.stringify(text.slice(0, 40))}`);
  const [y, mo, d, h, mi, s, ms] = m.slice(1, 8).map((v) => (v === undefined ? 0 : Number(v))) as number[];
  // Etc/GMT+5 is five hours *behind* UTC (POSIX sign convention), so add the hours back.
  const zoneHours = m[9] ? Number(m[9]) : 0;
  if (Math.abs(zoneHours) > 14) throw new BadValue(`impossible time zone: ${JSON.stringify(text)}`);
  const local = Date.UTC(y!, mo! - 1, d!, h, mi, s, m[7] ? Number(m[7].padEnd(3, '0')) : ms);
  const probe = new Date(local);
  // Date.UTC rolls 2013 02 30 over into March; a real export never means that.
  if (probe.getUTCMonth() !== mo! - 1 || probe.getUTCDate() !== d! || h! > 23 || mi! > 59 || s! > 60) {
    throw new BadValue(`impossible date: ${JSON.stringify(text)}`);
  }
  return new Date(local + zoneHours * 3_600_000);
}

function toBoolean(text: string): boolean {
  switch (text.trim().toLowerCase()) {
    case '1':
    case 'true':
    case 't':
      return true;
    case '0':
    case 'false':
    case 'f':
      return false;
    default:
      throw new BadValue(`not a boolean: ${JSON.stringify(text.slice(0, 40))}`);
  }
}

/** A `#dbTypes` entry without size and UNSIGNED, upper case: `VARCHAR(1000)` -> `VARCHAR`. */
function baseType(dbType: string): string {
  return dbType.trim().toUpperCase().replace(/\(.*$/, '').replace(/\s+UNSIGNED$/, '').trim();
}

/** How a column takes part in repairs: LONGTEXT-like, other text, or typed. */
function repairKind(dbType: string, converter: FieldConverter): RepairColumn['kind'] {
  if (converter !== asText) return 'typed';
  return /^(LONG|MEDIUM)?TEXT$/.test(baseType(dbType)) ? 'longtext' : 'text';
}

const asText: FieldConverter = (text) => text;

/** The converter of one `#dbTypes` entry (case-insensitive, size suffix ignored). */
export function fieldConverter(dbType: string, decimal: DecimalMode): FieldConverter {
  const base = baseType(dbType);
  if (/^(TINY|SMALL|MEDIUM|BIG)?INT(EGER)?$/.test(base)) return toInteger;
  if (base === 'DECIMAL' || base === 'NUMERIC' || base === 'DEC') return toDecimal(decimal);
  if (base === 'FLOAT' || base === 'DOUBLE' || base === 'REAL') return toFloat;
  if (base === 'DATETIME' || base === 'DATE' || base === 'TIMESTAMP') return toDate;
  if (base === 'BOOLEAN' || base === 'BOOL') return toBoolean;
  return asText;
}

/**
 * Builds the record-to-document function for a table.
 * Repairs a row with surplus fields when exactly one arrangement fits (./repair.ts).
 * Rejects (never throws for) a row with too few fields or an undecidable surplus, a value
 * its type cannot hold, an empty primary-key field, or an unterminated last record.
 * @param file named in errors.
 * @throws EpfHeaderError when the header is inconsistent (see validateHeader).
 */
export function makeConverter(
  header: EpfHeader,
  file: string,
  opts: { decimal: DecimalMode },
): (rec: RawRecord) => ConvertResult {
  validateHeader(header, file);
  const { columns, primaryKey } = header;
  const converters = header.dbTypes.map((t) => fieldConverter(t, opts.decimal));
  const n = columns.length;
  const single = primaryKey.length === 1 ? primaryKey[0]! : undefined;
  const repairColumns: RepairColumn[] = columns.map((c, i) => ({
    kind: repairKind(header.dbTypes[i]!, converters[i]!),
    key: primaryKey.includes(c),
    parses: (text) => {
      try {
        converters[i]!(text);
        return true;
      } catch (err) {
        if (err instanceof BadValue) return false;
        throw err;
      }
    },
  }));
  return (rec) => {
    if (rec.unterminated) return { reject: 'last record has no \\x02\\n terminator (truncated file)' };
    let fields = rec.fields;
    let repaired = false;
    if (fields.length < n) return { reject: `expected ${n} fields, got ${fields.length}` };
    if (fields.length > n) {
      const outcome = repairFields(fields, repairColumns);
      if ('reason' in outcome) return { reject: outcome.reason };
      fields = outcome.fields;
      repaired = true;
    }
    const doc: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const text = fields[i]!;
      if (text === '') {
        doc[columns[i]!] = null;
        continue;
      }
      try {
        doc[columns[i]!] = converters[i]!(text);
      } catch (err) {
        if (err instanceof BadValue) return { reject: `column ${columns[i]}: ${err.message}` };
        throw err;
      }
    }
    const done = (d: Record<string, unknown>): ConvertResult => (repaired ? { doc: d, repaired: true } : { doc: d });
    if (single !== undefined) {
      if (doc[single] === null) return { reject: `empty primary key ${single}` };
      return done({ _id: doc[single], ...doc });
    }
    if (primaryKey.length > 1) {
      const id: Record<string, unknown> = {};
      for (const key of primaryKey) {
        if (doc[key] === null) return { reject: `empty primary key ${key}` };
        id[key] = doc[key];
      }
      return done({ _id: id, ...doc });
    }
    return done(doc);
  };
}
