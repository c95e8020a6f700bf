/**
 * Where a file's bytes live in this process's work folder, and how a step
 * gets them back when they are not there: its earlier steps ran on another
 * machine (a takeover after that runner died), or the folder was cleaned.
 * Each step takes its input from its own work folder, never from a path
 * another step returned (see docs/epf.md, "Several machines").
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { TaskContext } from '../../index.js';
import type { EpfEnv } from './env.js';
import type { PlannedFile } from './plan.js';
import { downloadResumable } from './transfer/download.js';
import { Md5MismatchError } from './transfer/errors.js';
import { extractTbz, type ExtractedTable } from './transfer/extract.js';

/** The archive of `file` in this work folder. */
export const archivePath = (env: EpfEnv, file: PlannedFile): string => path.join(env.workDir, 'downloads', `${file.id}.tbz`);

/** The folder `file`'s tables are extracted to in this work folder. */
export const extractDir = (env: EpfEnv, file: PlannedFile): string => path.join(env.workDir, 'extracted', file.id);

const sizeOf = (p: string): Promise<number | undefined> => fs.stat(p).then((s) => s.size, () => undefined);

/**
 * The file's archive in this work folder: the one there when it has the size
 * the download step verified (written complete, renamed from `.part` only
 * after its MD5 matched), else fetched again from the feed and verified.
 * @param verified size (bytes) and MD5 hex from the `download:` task's output
 * @throws {@link Md5MismatchError} when the copy fetched again does not match
 */
export async function ensureArchive(ctx: TaskContext, env: EpfEnv, file: PlannedFile, verified: { bytes: number; md5: string }): Promise<string> {
  const dest = archivePath(env, file);
  if ((await sizeOf(dest)) === verified.bytes) return dest;
  env.reporter.warn?.(`${file.name}: its archive is not in this work folder (${env.workDir}); fetching it again from the feed`);
  await ctx.progress(0, `fetching ${file.name} again (not in this work folder)`);
  await fs.mkdir(path.dirname(dest), { recursive: true });
  const res = await downloadResumable({
    url: new URL(new URL(file.url).pathname, env.feed.baseUrl).href,
    dest,
    auth: env.auth,
    feedOrigin: new URL(env.feed.baseUrl).origin,
    checkpoint: async () => undefined, // the bytes are local to this attempt: nothing to resume elsewhere
    onProgress: (bytes, total) => env.reporter.file(file.id, 'download', bytes, total ?? file.size),
    signal: ctx.signal,
    chunkCheckpointBytes: env.downloadCheckpointBytes,
  });
  if (res.md5 !== verified.md5) {
    await fs.rm(dest, { force: true });
    throw new Md5MismatchError(file.name, verified.md5, res.md5);
  }
  return dest;
}

/**
 * The file's extracted tables in this work folder, in the order `extracted`
 * lists them: the ones there when every file has its extracted size, else
 * extracted again (from the archive, fetched again if missing too).
 * @param extracted the `extract:` task's output (its paths may be another machine's)
 */
export async function ensureExtracted(
  ctx: TaskContext,
  env: EpfEnv,
  file: PlannedFile,
  verified: { bytes: number; md5: string },
  extracted: { dir: string; tables: ExtractedTable[] },
): Promise<ExtractedTable[]> {
  const dir = extractDir(env, file);
  const local = extracted.tables.map((t) => ({ ...t, path: path.join(dir, path.relative(extracted.dir, t.path)) }));
  const sizes = await Promise.all(local.map((t) => sizeOf(t.path)));
  if (local.every((t, i) => sizes[i] === t.bytes)) return local;
  env.reporter.warn?.(`${file.name}: its extracted tables are not in this work folder (${env.workDir}); extracting them again`);
  const archive = await ensureArchive(ctx, env, file, verified);
  await ctx.progress(0, `extracting ${file.name} again (not in this work folder)`);
  const res = await extractTbz({ archive, destDir: dir, signal: ctx.signal, onProgress: (bytesIn) => env.reporter.file(file.id, 'extract', bytesIn, file.size) });
  const byName = new Map(res.tables.map((t) => [t.table, t]));
  return local.map((t) => byName.get(t.table) ?? t);
}
