/**
 * From a feed listing to the tasks of one slot: which files are new, in which
 * order they may be applied, and the task chain of each.
 *
 * Ordering rules (EPF.md, "Full vs incremental"): an incremental assumes its
 * table already holds the full export it follows, and a later incremental
 * overrides an earlier one. So, per table (v5: one `.tbz` per table; v3: one
 * per group), files are applied oldest first, and a file is planned only when
 * every older file of that table, back to the newest full, is already in the
 * ledger or planned in the same slot. A file whose `.md5` is not posted yet is
 * not ready, and neither is anything of its table after it.
 */
import type { DynamicTaskSpec } from '../../index.js';
import type { FeedFile } from './feed/client.js';

/** One file the slot ingests, with what the ledger keys it by. */
export interface PlannedFile {
  /** Stable, task-name-safe id, e.g. `full-itunes20250427-application`. */
  id: string;
  /** Per-table ordering key, e.g. `itunes/application` (v3: `itunes/`). */
  table: string;
  kind: 'full' | 'incremental';
  url: string;
  name: string;
  group: string;
  /** Export date, `YYYYMMDD`. */
  date: string;
  /** MD5 from the companion `.md5` file, hex. */
  md5: string;
  /** Bytes, from the listing or a HEAD request; undefined when the server did not say. */
  size: number | undefined;
  /**
   * An incremental's full export, `<URL path>@<md5>` (see {@link basisByTable}); part of its
   * ledger item, so a re-posted full makes its incrementals new again. Absent for a full, and
   * for an incremental whose table has no full in the plan.
   */
  basis?: string;
}

/**
 * What the ledger remembers for a file: its URL path plus size and checksum.
 * The path, not the whole URL: the same feed may be reached through another
 * host, port or mirror, and must not look new because of it.
 */
export function ledgerItem(f: Pick<PlannedFile, 'url' | 'size' | 'md5' | 'basis'>): { url: string; size: number; checksum: string; basis?: string } {
  return { url: new URL(f.url).pathname, size: f.size ?? -1, checksum: f.md5, ...(f.basis ? { basis: f.basis } : {}) };
}

/**
 * The full export each table's incrementals build on, as `<URL path>@<md5>`, by
 * table key: the plan's full file of that table (with its md5). An incremental
 * recorded over one full is not done over another: when a full is re-posted
 * (other bytes, so another md5), the incrementals after it are applied again
 * (issue 14, D: otherwise their changed and new rows vanish).
 */
export function basisByTable(files: Array<FeedFile & { md5?: string }>): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of files) {
    if (f.kind === 'full' && f.md5) out.set(tableKeyOf(f), `${new URL(f.url).pathname}@${f.md5}`);
  }
  return out;
}

/** The ledger item of a listed file whose md5 is known (an incremental's carries its table's basis). */
export function feedLedgerItem(f: FeedFile & { md5: string }, bases: Map<string, string>): ReturnType<typeof ledgerItem> {
  const basis = f.kind === 'incremental' ? bases.get(tableKeyOf(f)) : undefined;
  return ledgerItem({ url: f.url, size: f.size, md5: f.md5, ...(basis ? { basis } : {}) });
}

/** Step names of one file's chain, in order. */
export const FILE_STEPS = ['download', 'extract', 'import', 'publish'] as const;
export type FileStep = (typeof FILE_STEPS)[number];

/** Name of the task that runs `step` for file `id`. */
export function taskName(step: FileStep, id: string): string {
  return `${step}:${id}`;
}

/** The final task of a slot: depends on every file's last step. */
export const EXPORT_COMPLETE = 'export-complete';

/** Table key of a file, `<group>/<table>`; the archive's base name without extension and date: `application.tbz` -> `application`, `itunes20130130.tbz` -> `itunes`. */
export function tableKeyOf(f: FeedFile): string {
  const base = f.name.replace(/\.tbz$/, '');
  return `${f.group}/${base === `${f.group}${f.date}` ? '' : base.replace(f.date, '')}`;
}

function idOf(f: FeedFile): string {
  const base = f.name.replace(/\.tbz$/, '');
  const prefix = `${f.kind === 'full' ? 'full' : 'inc'}-${f.group}${f.date}`;
  const id = base === `${f.group}${f.date}` ? prefix : `${prefix}-${base}`;
  return id.replace(/[^A-Za-z0-9_-]/g, '_');
}

/**
 * Chooses the files of one slot.
 *
 * @param files the newest full export and the incrementals after it (from `EpfFeed.plan()`), each with its md5 when ready
 * An incremental of a table that has no full file in `files` and no live
 * collection (`hasLiveTable` false) waits for its full, as Apple's importer
 * skips it: it is neither downloaded nor failed, and later slots look again.
 *
 * @param isDone whether the ledger already holds a file (same URL, size, md5 and, for an incremental, basis)
 * @param hasLiveTable whether a table key (e.g. `itunes/genre`) has a published full; default: always
 * @returns files to ingest, oldest first per table, the files held back (not ready, or waiting for an older
 *   one or for a full), and `neverLoaded`: table keys whose incrementals wait for a full
 */
export function chooseFiles(
  files: Array<FeedFile & { md5?: string }>,
  isDone: (f: PlannedFile) => boolean,
  hasLiveTable: (table: string) => boolean = () => true,
): {
  planned: PlannedFile[];
  waiting: Array<{ name: string; url: string; reason: string }>;
  failed: FailedFile[];
  neverLoaded: string[];
} {
  const byTable = new Map<string, Array<FeedFile & { md5?: string }>>();
  for (const f of files) {
    const t = tableKeyOf(f);
    byTable.set(t, [...(byTable.get(t) ?? []), f]);
  }
  const planned: PlannedFile[] = [];
  const waiting: Array<{ name: string; url: string; reason: string }> = [];
  const failed: FailedFile[] = [];
  const neverLoaded: string[] = [];
  const bases = basisByTable(files);
  for (const [table, list] of byTable) {
    // Fulls before incrementals of the same date; then by date.
    list.sort((a, b) => a.date.localeCompare(b.date) || (a.kind === b.kind ? 0 : a.kind === 'full' ? -1 : 1));
    let blockedBy: string | undefined;
    if (list[0]?.kind === 'incremental' && !hasLiveTable(table)) {
      neverLoaded.push(table);
      blockedBy = `a full export of ${table} (never loaded)`;
    }
    for (const f of list) {
      if (blockedBy) {
        waiting.push({ name: f.name, url: f.url, reason: `waits for ${blockedBy}` });
        continue;
      }
      if (f.error) {
        // This file fails alone; later files of its table wait behind it (incrementals apply in order).
        failed.push({ name: `${f.group}${f.date}/${f.name}`, url: f.url, reason: f.error });
        blockedBy = `${f.group}${f.date}/${f.name} (failed)`;
        continue;
      }
      if (!f.ready || !f.md5) {
        waiting.push({ name: f.name, url: f.url, reason: 'its .md5 is not posted yet' });
        blockedBy = `${f.group}${f.date}/${f.name}`;
        continue;
      }
      const p: PlannedFile = {
        id: idOf(f),
        table,
        kind: f.kind,
        url: f.url,
        name: f.name,
        group: f.group,
        date: f.date,
        md5: f.md5,
        size: f.size,
      };
      const basis = f.kind === 'incremental' ? bases.get(table) : undefined;
      if (basis) p.basis = basis;
      if (!isDone(p)) planned.push(p);
    }
  }
  planned.sort((a, b) => a.date.localeCompare(b.date) || a.id.localeCompare(b.id));
  return { planned, waiting, failed, neverLoaded };
}

/** The collection name part of a table key (`itunes/genre` -> `genre`); undefined for a v3 group key (`itunes/`). */
export function tableNameOfKey(table: string): string | undefined {
  return table.split('/')[1] || undefined;
}

/** A file of the feed that cannot be ingested in this slot, and why. */
export interface FailedFile {
  name: string;
  url: string;
  reason: string;
}

/** Input of every file task. */
export interface FileTaskInput {
  file: PlannedFile;
}

/**
 * The tasks of one slot: per file `download -> extract -> import -> publish`,
 * with the file's id as their affinity key (they run where its bytes are;
 * after a takeover each step re-creates its input: see local-files.ts),
 * an incremental's import after the previous file of its table is published,
 * and `export-complete` after every publish (it fails when `failed` is not empty).
 */
export function fileTasks(planned: PlannedFile[], failed: FailedFile[] = []): DynamicTaskSpec[] {
  const specs: DynamicTaskSpec[] = [];
  const lastOfTable = new Map<string, string>();
  for (const file of planned) {
    const input: FileTaskInput = { file };
    const previous = lastOfTable.get(file.table);
    const name = (s: FileStep) => taskName(s, file.id);
    specs.push(
      {
        name: name('download'),
        handler: 'download',
        input,
        affinity: file.id,
        group: 'network',
        retries: 8,
        backoff: { initialMs: 1_000, factor: 2, maxMs: 30_000, jitter: 0.25 },
      },
      { name: name('extract'), handler: 'extract', input, affinity: file.id, dependsOn: [name('download')], group: 'cpu', retries: 2 },
      {
        name: name('import'),
        handler: 'import',
        input,
        affinity: file.id,
        // download: its verified size and MD5, to fetch the archive again on another machine.
        dependsOn: [name('extract'), name('download'), ...(previous ? [previous] : [])],
        group: 'database',
        retries: 3,
      },
      { name: name('publish'), handler: 'publish', input, affinity: file.id, dependsOn: [name('import'), name('download')], retries: 5 },
    );
    lastOfTable.set(file.table, name('publish'));
  }
  if (planned.length > 0 || failed.length > 0) {
    // export-complete fails the slot, after every other file is ingested, when some files failed at discovery.
    specs.push({
      name: EXPORT_COMPLETE,
      handler: 'export-complete',
      input: { files: planned.map((f) => f.id), failed },
      dependsOn: planned.map((f) => taskName('publish', f.id)),
    });
  }
  return specs;
}
