/**
 * Throwaway servers for the peers bench: a Redis on a free loopback port
 * with no persistence, and a PostgreSQL cluster made by `initdb` in a
 * temporary folder on a free loopback port (run as the `postgres` system
 * user when this process is root, because PostgreSQL refuses to run as root).
 * Each start returns null, with the reason printed, when its binaries are
 * not installed; each `stop()` is idempotent and removes its folder. Each
 * start hands its `stop` to `track` before it starts anything, so that a
 * Ctrl-C during start-up still stops what was started.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chownSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { getFreePort } from '../../tools/mongo-server.js';

/** Receives a server's `stop` as soon as there is something to stop. */
export type Track = (stop: () => Promise<void>) => void;

export interface RunningServer {
  /** `redis://127.0.0.1:<port>` or `postgres://postgres@127.0.0.1:<port>/postgres`. */
  url: string;
  /** What was started, for the report (binary version). */
  version: string;
  stop(): Promise<void>;
}

/** The full path of `name` on PATH (or in PostgreSQL's usual Debian folders), else null. */
export function findBinary(name: string, extraDirs: string[] = []): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), ...extraDirs]) {
    if (!dir) continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not in this folder
    }
  }
  return null;
}

/** `redis-server --port <free> --bind 127.0.0.1 --save "" --appendonly no`. */
export async function startRedis(track: Track): Promise<RunningServer | null> {
  const bin = findBinary('redis-server');
  if (!bin) {
    console.error('redis-server is not installed (Debian: apt-get install redis-server): skipping BullMQ');
    return null;
  }
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
  const port = await getFreePort();
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const stop = () => stopChild(child);
  track(stop);
  const url = `redis://127.0.0.1:${port}`;
  const { Redis } = await import('ioredis');
  const started = Date.now();
  for (;;) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      break;
    } catch (e) {
      probe.disconnect();
      if (child.exitCode !== null || Date.now() - started > 20_000) {
        child.kill('SIGKILL');
        throw new Error(`redis-server did not answer on ${url}: ${(e as Error).message}`);
      }
      await sleep(100);
    }
  }
  return { url, version, stop };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

const PG_DIRS = ['/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin'];

/**
 * `initdb` (trust authentication, user `postgres`) in a temporary folder and
 * `pg_ctl start -w` on a free loopback port; default durability settings
 * (fsync on, synchronous_commit on), as a user would run it.
 */
export async function startPostgres(track: Track): Promise<RunningServer | null> {
  const initdb = findBinary('initdb', PG_DIRS);
  const pgCtl = findBinary('pg_ctl', PG_DIRS);
  if (!initdb || !pgCtl) {
    console.error('PostgreSQL server binaries (initdb, pg_ctl) are not installed (Debian: apt-get install postgresql): skipping pg-boss and graphile-worker');
    return null;
  }
  // PostgreSQL refuses to run as root: run it as the `postgres` system user then.
  let asUser: string[] = [];
  let owner: { uid: number; gid: number } | null = null;
  if (process.getuid?.() === 0) {
    try {
      owner = { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) };
    } catch {
      console.error('running as root and there is no `postgres` user to run PostgreSQL as: skipping pg-boss and graphile-worker');
      return null;
    }
    asUser = ['runuser', '-u', 'postgres', '--'];
  }
  // Asynchronous, so that a Ctrl-C during initdb is handled at once.
  const run = (args: string[]) => {
    const [cmd, ...rest] = [...asUser, ...args];
    return promisify(execFile)(cmd!, rest, { encoding: 'utf8' });
  };
  const version = execFileSync(initdb.replace(/initdb$/, 'postgres'), ['--version'], { encoding: 'utf8' }).trim();
  const dir = mkdtempSync(join(tmpdir(), 'pts-peers-pg-'));
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const port = await getFreePort();
  let running = false;
  const stop = async () => {
    if (running) {
      running = false;
      try {
        await run([pgCtl, '-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch (e) {
        console.error(`pg_ctl stop failed: ${(e as Error).message}`);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  track(stop);
  try {
    await run([initdb, '-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    running = true;
    await run([pgCtl, '-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200`, 'start']);
  } catch (e) {
    await stop();
    const err = e as { stderr?: string; message: string };
    throw new Error(`could not start PostgreSQL: ${err.stderr || err.message}`);
  }
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, version, stop };
}
