/**
 * `pts epf` settings: each from its flag, else its environment variable,
 * else its default. Everything is validated here, before a database or a
 * feed is touched, so a bad value is one line and exit 2, never a failure
 * after hours of downloads.
 */
import path from 'node:path';
import type { EpfLayout } from '../../ingest/epf/feed/client.js';
import { usageError } from '../errors.js';

/** The flags of `pts epf` as commander parsed them (strings; booleans for switches). */
export interface EpfFlags {
  hourly?: boolean;
  now?: boolean;
  join?: boolean;
  json?: boolean;
  fresh?: boolean;
  yes?: boolean;
  fixture?: boolean;
  fixtureUnlessFeed?: boolean;
  feedUrl?: string;
  layout?: string;
  workDir?: string;
  tablePrefix?: string;
  batchSize?: string;
  maxRejectFraction?: string;
  incrementalWrite?: string;
  keepFiles?: boolean;
  logFormat?: string;
  fixtureScale?: string;
  fixtureRate?: string;
  downloadCheckpointBytes?: string;
  checkpointIntervalMs?: string;
}

/** Where the job reads its feed from. */
export type FeedChoice = { kind: 'fixture'; scale: number; bytesPerSecond?: number } | { kind: 'url'; url: string; username?: string; password?: string };

/** `pts epf` settings, validated. */
export interface EpfSettings {
  mode: 'once' | 'hourly';
  /** `--hourly --now`: run the current hour's slot at start instead of waiting for the next one. */
  now: boolean;
  /** `--join`: work beside a run (or, with --hourly, the slots) that another process runs. */
  join: boolean;
  json: boolean;
  fresh: boolean;
  yes: boolean;
  feed: FeedChoice;
  layout: EpfLayout;
  /** Absolute path. */
  workDir: string;
  tablePrefix: string;
  batchSize: number;
  /** 0–1. */
  maxRejectFraction: number;
  incrementalWrite: 'auto' | 'upsert' | 'generation' | 'delete-insert';
  keepFiles: boolean;
  logFormat: 'text' | 'json';
  downloadCheckpointBytes?: number;
  checkpointIntervalMs?: number;
}

/** Apple's v5 feed, used when only credentials are given. */
const APPLE_V5 = 'https://feeds.itunes.apple.com/feeds/epf/v5/current/';

/** A value and where it came from, for messages: `--batch-size` or `EPF_BATCH_SIZE`. */
interface Given {
  value: string;
  from: string;
}

function given(flag: string | undefined, flagName: string, env: NodeJS.ProcessEnv, envName: string): Given | undefined {
  if (flag !== undefined) return { value: flag, from: flagName };
  const v = env[envName];
  return v === undefined || v === '' ? undefined : { value: v, from: envName };
}

function bad(g: Given, expected: string): never {
  throw usageError(`invalid ${g.from} ${JSON.stringify(g.value)}: expected ${expected}`);
}

function wholeNumber(g: Given | undefined, min: number, max: number, what: string): number | undefined {
  if (!g) return undefined;
  const n = /^\s*\d+\s*$/.test(g.value) ? Number(g.value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) bad(g, `${what}, a whole number from ${min} to ${max}`);
  return n;
}

function oneOf<T extends string>(g: Given | undefined, choices: readonly T[], fallback: T): T {
  if (!g) return fallback;
  if (!(choices as readonly string[]).includes(g.value)) bad(g, `one of ${choices.join(', ')}`);
  return g.value as T;
}

function onOff(flag: boolean | undefined, flagName: string, env: NodeJS.ProcessEnv, envName: string): boolean {
  if (flag) return true;
  const g = given(undefined, flagName, env, envName);
  if (!g) return false;
  if (g.value === '1' || g.value === 'true') return true;
  if (g.value === '0' || g.value === 'false') return false;
  return bad(g, '1 or 0');
}

/** Checks a feed URL: absolute http(s), no credentials in it (they would be logged). */
function feedUrl(g: Given): string {
  let url: URL;
  try {
    url = new URL(g.value);
  } catch {
    return bad(g, 'an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') bad(g, 'an absolute http:// or https:// URL');
  if (url.username || url.password) bad(g, 'a URL without credentials (set EPF_USERNAME and EPF_PASSWORD)');
  return url.href;
}

/**
 * Validates `pts epf`'s flags and environment.
 * @throws CliError (exit 2) naming the flag or variable at fault
 */
export function resolveEpfSettings(flags: EpfFlags, env: NodeJS.ProcessEnv, cwd = process.cwd()): EpfSettings {
  const layout = oneOf(given(flags.layout, '--layout', env, 'EPF_LAYOUT'), ['v5', 'v3'] as const, 'v5');
  const logFormat = oneOf(given(flags.logFormat, '--log-format', env, 'EPF_LOG_FORMAT'), ['text', 'json'] as const, 'text');
  const incrementalWrite = oneOf(
    given(flags.incrementalWrite, '--incremental-write', env, 'EPF_INCREMENTAL_WRITE'),
    ['auto', 'upsert', 'generation', 'delete-insert'] as const,
    'auto',
  );
  const batchSize = wholeNumber(given(flags.batchSize, '--batch-size', env, 'EPF_BATCH_SIZE'), 1, 1_000_000, 'rows per batch') ?? 2_000;
  const rejectGiven = given(flags.maxRejectFraction, '--max-reject-fraction', env, 'EPF_MAX_REJECT_FRACTION');
  let maxRejectFraction = 0.01;
  if (rejectGiven) {
    const f = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(rejectGiven.value) ? Number(rejectGiven.value) : Number.NaN;
    if (!(f >= 0 && f <= 1)) bad(rejectGiven, 'a fraction from 0 to 1, e.g. 0.01');
    maxRejectFraction = f;
  }
  const prefixGiven = given(flags.tablePrefix, '--table-prefix', env, 'EPF_PREFIX');
  const tablePrefix = prefixGiven?.value ?? 'epf_';
  if (prefixGiven && !/^[A-Za-z][A-Za-z0-9_]{0,30}$/.test(tablePrefix)) bad(prefixGiven, 'letters, digits and _ (at most 31), starting with a letter');
  const downloadCheckpointBytes = wholeNumber(
    given(flags.downloadCheckpointBytes, '--download-checkpoint-bytes', env, 'EPF_DOWNLOAD_CHECKPOINT_BYTES'),
    1,
    Number.MAX_SAFE_INTEGER,
    'bytes',
  );
  const checkpointIntervalMs = wholeNumber(
    given(flags.checkpointIntervalMs, '--checkpoint-interval-ms', env, 'EPF_CHECKPOINT_INTERVAL_MS'),
    0,
    2_147_483_647,
    'milliseconds',
  );
  const workDir = path.resolve(cwd, given(flags.workDir, '--work-dir', env, 'EPF_WORK_DIR')?.value ?? '.epf-work');

  const urlGiven = given(flags.feedUrl, '--feed-url', env, 'EPF_BASE_URL');
  const url = urlGiven ? feedUrl(urlGiven) : undefined;
  const username = env.EPF_USERNAME || undefined;
  const password = env.EPF_PASSWORD || undefined;
  if (Boolean(username) !== Boolean(password)) {
    throw usageError(`${username ? 'EPF_USERNAME is set but EPF_PASSWORD is not' : 'EPF_PASSWORD is set but EPF_USERNAME is not'}: set both or neither`);
  }
  const configured = url !== undefined || username !== undefined;
  let feed: FeedChoice;
  if (flags.fixture || (flags.fixtureUnlessFeed && !configured)) {
    if (flags.fixture && configured) throw usageError('--fixture cannot be combined with EPF_BASE_URL/--feed-url or EPF_USERNAME/EPF_PASSWORD');
    const scaleGiven = given(flags.fixtureScale, '--fixture-scale', env, 'EPF_FIXTURE_SCALE');
    let scale = 1;
    if (scaleGiven) {
      scale = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(scaleGiven.value) ? Number(scaleGiven.value) : Number.NaN;
      if (!(scale > 0 && scale <= 100_000)) bad(scaleGiven, 'a size multiplier above 0, at most 100000');
    }
    const bytesPerSecond = wholeNumber(given(flags.fixtureRate, '--fixture-rate', env, 'EPF_FIXTURE_RATE'), 1, Number.MAX_SAFE_INTEGER, 'bytes per second');
    feed = { kind: 'fixture', scale, ...(bytesPerSecond ? { bytesPerSecond } : {}) };
  } else if (configured) {
    feed = { kind: 'url', url: url ?? APPLE_V5, ...(username ? { username, password } : {}) };
  } else {
    throw usageError(
      'no feed: set EPF_BASE_URL (and EPF_USERNAME, EPF_PASSWORD), or only EPF_USERNAME and EPF_PASSWORD for Apple\'s v5 feed; or pass --fixture to try a generated local feed',
    );
  }
  return {
    mode: flags.hourly ? 'hourly' : 'once',
    now: Boolean(flags.now),
    join: Boolean(flags.join),
    json: Boolean(flags.json),
    fresh: Boolean(flags.fresh),
    yes: Boolean(flags.yes),
    feed,
    layout,
    workDir,
    tablePrefix,
    batchSize,
    maxRejectFraction,
    incrementalWrite,
    keepFiles: onOff(flags.keepFiles, '--keep-files', env, 'EPF_KEEP_FILES'),
    logFormat,
    ...(downloadCheckpointBytes !== undefined ? { downloadCheckpointBytes } : {}),
    ...(checkpointIntervalMs !== undefined ? { checkpointIntervalMs } : {}),
  };
}
