/**
 * The handlers of one EPF slot: discover, then per file download (with the
 * MD5 computed while streaming), extract, import, publish, and finally
 * export-complete. Each is a plain async function of the task context; all
 * resumable state goes through `ctx.checkpoint`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { NonRetryableError, type TaskContext } from '../../index.js';
import { importTable, type ImportCheckpoint, type ImportResult } from './load/import-table.js';
import { liveCollectionName, publishStaging } from './load/switch.js';
import { basisByTable, chooseFiles, EXPORT_COMPLETE, feedLedgerItem, fileTasks, ledgerItem, tableKeyOf, tableNameOfKey, taskName, type FailedFile, type FileTaskInput, type PlannedFile } from './plan.js';
import { EpfAuthError } from './feed/errors.js';
import { NoLiveTableError } from './errors.js';
import type { EpfEnv } from './env.js';
import type { FeedFile } from './feed/client.js';
import { downloadResumable, type DownloadCheckpoint } from './transfer/download.js';
import { extractTbz } from './transfer/extract.js';
import { Md5MismatchError } from './transfer/errors.js';
import { archivePath, ensureArchive, ensureExtracted, extractDir } from './local-files.js';
import { withFileClaim } from './file-claim.js';

/** Output of `discover`. */
export interface DiscoverOutput {
  planned: Array<Pick<PlannedFile, 'id' | 'name' | 'kind' | 'date' | 'group' | 'size'>>;
  waiting: Array<{ name: string; url: string; reason: string }>;
  /** Files (and drop listings) that failed at discovery; the rest of the slot went on. */
  failed?: FailedFile[];
}

/** Output of a `download:` task. */
export interface DownloadOutput {
  path: string;
  /** File size, bytes. */
  bytes: number;
  /** Bytes received by the attempt that finished it (0 when an earlier run had it). */
  fetchedBytes: number;
  md5: string;
  restarted: boolean;
  /** Set when another slot ingested the file first (its container): this slot skipped it. */
  ingestedBy?: string;
}

/** Output of an `extract:` task. */
export interface ExtractOutput {
  dir: string;
  tables: Array<{ table: string; path: string; bytes: number }>;
  decompressor: string;
  /** Set when another slot ingested the file first. */
  ingestedBy?: string;
}

/** Output of an `import:` task. */
export interface ImportOutput {
  tables: ImportResult[];
  /** Set when another slot ingested the file first. */
  ingestedBy?: string;
}

/** State an `import:` task checkpoints after each committed batch. */
interface ImportState {
  done: Record<string, ImportResult>;
  current?: { table: string; cp: ImportCheckpoint };
}

const inputOf = (ctx: TaskContext): PlannedFile => (ctx.input as FileTaskInput).file;

/**
 * The file's URL on the feed this process talks to: the stored path on the
 * current feed's origin. A resumed run may reach the same feed through
 * another host or port (a mirror; the local fixture picks a free port).
 */
const onFeed = (env: EpfEnv, url: string): string => new URL(new URL(url).pathname, env.feed.baseUrl).href;
const depOf = <T>(ctx: TaskContext, step: 'download' | 'extract' | 'import', id: string): T =>
  ctx.deps[taskName(step, id)] as T;

/** Lists the feed, drops what the ledger holds, and adds the tasks of what is left. */
export async function discover(ctx: TaskContext, env: EpfEnv): Promise<DiscoverOutput> {
  await ctx.progress(0, 'listing the feed');
  const plan = await env.feed.plan();
  const files: Array<FeedFile & { md5?: string }> = [];
  for (const f of [...plan.full, ...plan.incrementals]) {
    ctx.signal.throwIfAborted();
    if (!f.ready || f.error) {
      files.push(f);
      continue;
    }
    try {
      files.push({ ...f, md5: await env.feed.fetchMd5(f) });
    } catch (err) {
      if (err instanceof EpfAuthError || ctx.signal.aborted) throw err;
      files.push({ ...f, error: `.md5 unusable: ${(err as Error).message}` }); // this file fails alone
    }
  }
  const done = new Set<string>();
  const bases = basisByTable(files);
  for (const f of files) {
    if (f.md5 && (await env.ledger.has(feedLedgerItem({ ...f, md5: f.md5 }, bases)))) done.add(f.url);
  }
  // Tables with incrementals but no full in this plan: is a full of them live already?
  const live = new Set<string>();
  const withFull = new Set(files.filter((f) => f.kind === 'full').map((f) => tableKeyOf(f)));
  for (const key of new Set(files.filter((f) => f.kind === 'incremental').map((f) => tableKeyOf(f)))) {
    const name = tableNameOfKey(key);
    // v3 keys name a group, not a table: not checked here (the import says NoLiveTableError as before).
    if (withFull.has(key) || !name || (await liveCollectionName(env.connection.db!, name, env.prefix))) live.add(key);
  }
  const chosen = chooseFiles(files, (p) => done.has(p.url), (key) => live.has(key));
  for (const key of chosen.neverLoaded) {
    env.reporter.warn?.(
      `${key}: incrementals skipped until a full export of this table is loaded (it never was; Apple's importer skips them too)`,
    );
  }
  const planned = chosen.planned;
  const waiting = [
    ...plan.waiting.map((f) => ({ name: `${f.drop}/${f.name}`, url: f.url, reason: 'its drop is not complete yet (a .md5 is missing)' })),
    ...chosen.waiting,
  ];
  const failed = [...plan.failedListings.map((l) => ({ name: l.url, url: l.url, reason: `listing failed: ${l.reason}` })), ...chosen.failed];
  env.reporter.planned(planned, [...waiting, ...failed.map((f) => ({ ...f, reason: `FAILED: ${f.reason}` }))]); // before the tasks exist
  await ctx.addTasks(fileTasks(planned, failed));
  return {
    planned: planned.map(({ id, name, kind, date, group, size }) => ({ id, name, kind, date, group, size })),
    waiting,
    ...(failed.length ? { failed } : {}),
  };
}

async function md5OfFile(p: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(p)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Downloads one file, resuming from the checkpointed byte offset, and checks
 * its MD5; first claims the file for this slot in the ledger (waiting while
 * another slot ingests it, skipping it once that slot recorded it).
 */
export async function download(ctx: TaskContext, env: EpfEnv): Promise<DownloadOutput> {
  const file = inputOf(ctx);
  const claimed = await withFileClaim(ctx, env, file, () => downloadClaimed(ctx, env, file));
  if (claimed.status === 'ran') return claimed.value;
  return { path: '', bytes: file.size ?? 0, fetchedBytes: 0, md5: file.md5, restarted: false, ingestedBy: claimed.by };
}

async function downloadClaimed(ctx: TaskContext, env: EpfEnv, file: PlannedFile): Promise<DownloadOutput> {
  const dest = archivePath(env, file);
  await fs.mkdir(path.dirname(dest), { recursive: true });
  const report = (bytes: number, total?: number) => {
    env.reporter.file(file.id, 'download', bytes, total ?? file.size);
    const t = total ?? file.size;
    void ctx.progress(t ? Math.min(1, bytes / t) : 0, `downloading ${file.name}`).catch(() => undefined);
  };
  const url = onFeed(env, file.url);
  const resume = (ctx.lastCheckpoint as DownloadCheckpoint | null | undefined) ?? undefined;
  if (!resume) {
    // A complete copy left by an earlier run (e.g. a failed import) is verified and reused, not fetched again.
    const kept = await fs.stat(dest).catch(() => undefined);
    if (kept && file.size !== undefined && kept.size === file.size && (await md5OfFile(dest)) === file.md5) {
      env.reporter.file(file.id, 'download', kept.size, kept.size);
      return { path: dest, bytes: kept.size, fetchedBytes: 0, md5: file.md5, restarted: false };
    }
  }
  env.reporter.file(file.id, 'download', resume?.offset ?? 0, file.size); // where this attempt starts
  const res = await downloadResumable({
    url,
    dest,
    auth: env.auth,
    feedOrigin: new URL(env.feed.baseUrl).origin,
    resume,
    checkpoint: (cp) => ctx.checkpoint(cp),
    onProgress: report,
    signal: ctx.signal,
    chunkCheckpointBytes: env.downloadCheckpointBytes,
  });
  let expected = file.md5;
  if (res.md5 !== expected) {
    // The .md5 read at discovery may itself have been wrong: read it once more.
    expected = await env.feed.fetchMd5({ name: file.name, md5Url: `${url}.md5` });
  }
  if (res.md5 !== expected) {
    await fs.rm(dest, { force: true });
    await ctx.checkpoint(null); // the next attempt starts from byte 0
    throw new Md5MismatchError(file.name, expected, res.md5);
  }
  return { path: dest, bytes: res.size, fetchedBytes: res.fetchedBytes, md5: res.md5, restarted: res.restarted };
}

/**
 * Extracts the archive's table files (streaming bzip2 + tar) from this work
 * folder's copy, fetched again when the download ran on another machine.
 */
export async function extract(ctx: TaskContext, env: EpfEnv): Promise<ExtractOutput> {
  const file = inputOf(ctx);
  const dl = depOf<DownloadOutput>(ctx, 'download', file.id);
  const skipped = (by: string): ExtractOutput => ({ dir: '', tables: [], decompressor: '', ingestedBy: by });
  if (dl.ingestedBy) return skipped(dl.ingestedBy);
  const claimed = await withFileClaim(ctx, env, file, async () => {
    const archive = await ensureArchive(ctx, env, file, dl);
    const dir = extractDir(env, file);
    await ctx.progress(0, `extracting ${file.name}`);
    const res = await extractTbz({
      archive,
      destDir: dir,
      signal: ctx.signal,
      onProgress: (bytesIn) => env.reporter.file(file.id, 'extract', bytesIn, file.size),
    });
    return { dir, tables: res.tables, decompressor: res.decompressor };
  });
  return claimed.status === 'ran' ? claimed.value : skipped(claimed.by);
}

/** Imports every table of the archive, checkpointing the record offset after each committed batch. */
export async function importFile(ctx: TaskContext, env: EpfEnv): Promise<ImportOutput> {
  const file = inputOf(ctx);
  const extracted = depOf<ExtractOutput>(ctx, 'extract', file.id);
  if (extracted.ingestedBy) return { tables: [], ingestedBy: extracted.ingestedBy };
  const claimed = await withFileClaim(ctx, env, file, async () => {
    // This work folder's copy of the tables; extracted again (and fetched again) when they are elsewhere.
    const tables = await ensureExtracted(ctx, env, file, depOf<DownloadOutput>(ctx, 'download', file.id), extracted);
    return importTables(ctx, env, file, tables);
  });
  return claimed.status === 'ran' ? claimed.value : { tables: [], ingestedBy: claimed.by };
}

async function importTables(ctx: TaskContext, env: EpfEnv, file: PlannedFile, tables: ExtractOutput['tables']): Promise<ImportOutput> {
  const state: ImportState = structuredClone((ctx.lastCheckpoint as ImportState | null | undefined) ?? { done: {} });
  const totalBytes = tables.reduce((s, t) => s + t.bytes, 0) || 1;
  let doneBytes = tables.filter((t) => state.done[t.table]).reduce((s, t) => s + t.bytes, 0);
  const db = env.connection.db!;
  for (const t of tables) {
    if (state.done[t.table]) continue;
    const resume = state.current?.table === t.table ? state.current.cp : undefined;
    const result = await skipNeverLoaded(file, t.table, () =>
      importTable({
        db,
        file: t.path,
        table: t.table,
        source: `${file.group}${file.date}/${file.name}`,
        mode: file.kind,
        prefix: env.prefix,
        exportDate: file.date,
        batchSize: env.batchSize,
        incrementalWrite: env.incrementalWrite,
        maxRejectFraction: env.maxRejectFraction,
        resume,
        signal: ctx.signal,
        onBatch: async (cp) => {
          state.current = { table: t.table, cp };
          await ctx.checkpoint(state);
          const fraction = Math.min(1, (doneBytes + cp.offset) / totalBytes);
          env.reporter.file(file.id, 'import', cp.imported + cp.rejected, undefined, t.table, fraction);
          await ctx.progress(fraction, `importing ${t.table}: ${cp.imported} rows`);
        },
      }),
    );
    for (const w of result.warnings ?? []) env.reporter.warn?.(`${file.group}${file.date}/${file.name}: ${w}`);
    state.done[t.table] = result;
    delete state.current;
    doneBytes += t.bytes;
    await ctx.checkpoint(state);
  }
  return { tables: tables.map((t) => state.done[t.table]!) };
}

/**
 * An incremental table whose full export was never loaded is skipped with a
 * warning, as Apple's importer skips it (its next full loads the table): a
 * v3 group archive holds every table of its group, so one never-loaded table
 * must not fail the others. The import throws before writing anything then.
 */
async function skipNeverLoaded(file: PlannedFile, table: string, run: () => Promise<ImportResult>): Promise<ImportResult> {
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof NoLiveTableError) || file.kind !== 'incremental') throw error;
    const warning = `${table}: incremental rows skipped, the table was never fully loaded (Apple's importer skips them too; its next full export loads it)`;
    return { table, collection: '', rows: 0, rejected: 0, replacedUtf8: 0, repaired: 0, stale: 0, warnings: [warning], recordsWritten: 0, decimal: 'string', skipped: warning };
  }
}

/** Makes a full export's tables live (atomic switch), records the file in the ledger, and frees disk. */
export async function publish(ctx: TaskContext, env: EpfEnv): Promise<{ file: string; tables: ImportResult[] }> {
  const file = inputOf(ctx);
  const imported = depOf<ImportOutput>(ctx, 'import', file.id);
  const dl = depOf<DownloadOutput>(ctx, 'download', file.id);
  const skipped = (by: string) => {
    env.reporter.file(file.id, 'done', dl.bytes, dl.bytes);
    return { file: file.id, tables: [], ingestedBy: by };
  };
  if (imported.ingestedBy) return skipped(imported.ingestedBy);
  const { tables } = imported;
  const claimed = await withFileClaim(ctx, env, file, async () => {
    if (file.kind === 'full') {
      for (const t of tables) await publishStaging(env.connection.db!, t.table, file.date, env.prefix);
    }
    ctx.signal.throwIfAborted(); // an attempt given back (stop, lost lease) records nothing: its successor does
    await env.ledger.record(ledgerItem({ url: file.url, size: file.size, md5: dl.md5, ...(file.basis ? { basis: file.basis } : {}) }), {
      container: ctx.container,
      kind: file.kind,
      tables: tables.map((t) => ({ table: t.table, rows: t.rows, rejected: t.rejected })),
    });
  }, { release: true });
  // Recorded: a slot waiting for the file sees it done at its next poll.
  if (claimed.status === 'done') return skipped(claimed.by);
  if (!env.keepFiles) {
    await fs.rm(extractDir(env, file), { recursive: true, force: true });
    await fs.rm(archivePath(env, file), { force: true });
  }
  env.reporter.file(file.id, 'done', dl.bytes, dl.bytes);
  return { file: file.id, tables };
}

/**
 * Runs after every file of the slot and sums it up. Each file was recorded in
 * the ledger by its own publish step, so one failing file does not make the
 * next slot redo the others.
 */
export async function exportComplete(ctx: TaskContext, env: EpfEnv): Promise<{ files: number; rows: number }> {
  let rows = 0;
  let files = 0;
  for (const [name, out] of Object.entries(ctx.deps)) {
    if (!name.startsWith('publish:')) continue;
    const o = out as { file: string; tables: ImportResult[] };
    files += 1;
    rows += o.tables.reduce((s, t) => s + t.rows, 0);
  }
  await ctx.progress(1, `${files} files, ${rows} rows`);
  const failed = (ctx.input as { failed?: FailedFile[] } | undefined)?.failed ?? [];
  if (failed.length) {
    throw new NonRetryableError(
      `${failed.length} file(s) of the feed could not be ingested (the other ${files} were): ` +
        failed.map((f) => `${f.name}: ${f.reason}`).join('; '),
    );
  }
  return { files, rows };
}

export { EXPORT_COMPLETE };
