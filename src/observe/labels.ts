/** Most distinct values one label takes per registry; later values are reported as `other`. */
export const MAX_LABEL_VALUES = 100;

/**
 * The family of a container or task name, for metric labels: the name up to
 * its first run of digits (with the separator before it), so that
 * `epf-2026-12-06T10`, `import-file-0042` or `report@17` count under `epf`,
 * `import-file` and `report`. Bounded: at most {@link MAX_LABEL_VALUES}
 * families per {@link LabelSet}, then `other`.
 */
export function nameFamily(name: string): string {
  const cut = name.replace(/[-_.:@/ T]*\d.*$/s, '');
  return (cut || 'other').slice(0, 64);
}

/** Keeps the values of one label bounded: the first {@link MAX_LABEL_VALUES} families seen, then `other`. */
export class LabelSet {
  private readonly seen = new Set<string>();

  constructor(private readonly max = MAX_LABEL_VALUES) {}

  /** The label value for `name`. */
  of(name: string): string {
    const family = nameFamily(name);
    if (this.seen.has(family)) return family;
    if (this.seen.size >= this.max) return 'other';
    this.seen.add(family);
    return family;
  }
}
