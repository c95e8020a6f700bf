/**
 * `pts epf` (src/cli/main.ts) as a real process against a fixture feed and a
 * test database, for the job's end-to-end tests:
 *
 *   const run = await runEpfJob({ db: db(), feed, workDir }, { EPF_LAYOUT: 'v3' });
 *   expect(run.exit.code).toBe(0); run.summary?.files.ingested
 *   const summary = await runEpfJobOk({ db: db(), feed, workDir });   // exit 0 expected
 */
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { FixtureFeed } from '../../src/ingest/epf/fixture/server.js';
import type { EpfSummary } from '../../src/ingest/epf/summary.js';
import { spawnTsChild, type ExitInfo, type TsChild } from './child.js';

/** Where fixture feeds are generated (cached across test files). */
export const EPF_FIXTURES = path.join(os.tmpdir(), 'pts-epf-fixtures');

/** What one job runs against: a test database, the feed, and its work folder. */
export interface EpfJobTarget {
  db: { uriWithDb: string };
  feed: Pick<FixtureFeed, 'baseUrl' | 'username' | 'password'>;
  workDir: string;
  /** `EPF_BASE_URL` when not the feed's own (a wrong or differently spelled URL). */
  baseUrl?: string;
}

/** The job's environment: database, feed URL and credentials, work folder, 200 rows a batch; `env` adds or overrides. */
export function epfJobEnv(t: EpfJobTarget, env: Record<string, string> = {}): Record<string, string> {
  return {
    MONGODB_URI: t.db.uriWithDb,
    EPF_BASE_URL: t.baseUrl ?? t.feed.baseUrl,
    EPF_USERNAME: t.feed.username,
    EPF_PASSWORD: t.feed.password,
    EPF_WORK_DIR: t.workDir,
    EPF_BATCH_SIZE: '200',
    ...env,
  };
}

/** Starts `pts epf` (with `--json` unless `json: false`). */
export function startEpfJob(t: EpfJobTarget, env: Record<string, string> = {}, o: { json?: boolean } = {}): TsChild {
  return spawnTsChild('src/cli/main.ts', ['epf', ...(o.json === false ? [] : ['--json'])], epfJobEnv(t, env));
}

/** One run of the job: how it exited, the process (lines, stderr), and the summary of its last stdout line (null when not JSON). */
export interface EpfJobRun {
  exit: ExitInfo;
  child: TsChild;
  summary: EpfSummary | null;
}

/** Runs `pts epf --json` to its end (at most `timeoutMs`, default 400 s; the error carries its last lines). */
export async function runEpfJob(t: EpfJobTarget, env: Record<string, string> = {}, o: { timeoutMs?: number } = {}): Promise<EpfJobRun> {
  const child = startEpfJob(t, env);
  const exit = await child.waitForExit(o.timeoutMs ?? 400_000).catch((error: Error) => {
    throw new Error(`${error.message}; its last lines:\n${child.lines.slice(-40).join('\n')}\n${child.stderr.slice(-4000)}`);
  });
  let summary: EpfSummary | null = null;
  try {
    summary = JSON.parse(child.lines.at(-1) ?? '') as EpfSummary;
  } catch {
    summary = null;
  }
  return { exit, child, summary };
}

/** {@link runEpfJob}, expecting exit 0 and, on stdout, the summary object and nothing else (`--json`); returns the summary. */
export async function runEpfJobOk(t: EpfJobTarget, env: Record<string, string> = {}, o: { timeoutMs?: number } = {}): Promise<EpfSummary> {
  const run = await runEpfJob(t, env, o);
  expect(run.exit, `job failed:\n${run.child.lines.join('\n')}\n${run.child.stderr.slice(-4000)}`).toEqual({ code: 0, signal: null });
  expect(run.summary, `no summary: ${run.child.lines.at(-1)}`).not.toBeNull();
  expect(run.child.lines.filter((l) => l.trim() !== '')).toEqual([run.child.lines.at(-1)]);
  return run.summary!;
}
