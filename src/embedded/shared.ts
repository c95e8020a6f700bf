/**
 * Small helpers shared by the embedded server's parts: where the package
 * lives, logging, timeouts, free ports and a readiness ping.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mongoose from 'mongoose';
import { TaskStatusError } from '../errors.js';

/** Prefix of the progress lines and error messages of the embedded server. */
export const PREFIX = 'persistent-task-status:';

/** The embedded server could not be started (the message says what to install or set). */
export class EmbeddedServerError extends TaskStatusError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PTS_EMBEDDED_SERVER', message, options);
  }
}

/** Writes a progress line to stderr. */
export function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** The message of anything thrown. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** First line of an error message, for one-line log entries. */
export function firstLine(err: unknown): string {
  return errorMessage(err).split('\n').find((l) => l.trim())?.trim() ?? 'unknown error';
}

/** Thrown by {@link withTimeout}. */
export class TimeoutError extends Error {}

/** Races `promise` against a timer of `ms` milliseconds. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let root: string | undefined;

/**
 * The package's root folder (the one holding its package.json): the clone in
 * development, `node_modules/persistent-task-status` once installed. Found by
 * walking up from this module, which lives in `src/embedded/` or in `dist/`.
 */
export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'persistent-task-status') return (root = dir);
    } catch {
      // no package.json here
    }
    const up = path.dirname(dir);
    if (up === dir) throw new EmbeddedServerError(`${PREFIX} cannot find the package's own package.json`);
    dir = up;
  }
}

/** A free TCP port on 127.0.0.1 (racy by nature; callers retry on EADDRINUSE). */
export function getFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => {
        if (addr && typeof addr === 'object') resolve(addr.port);
        else reject(new Error('could not determine a free port'));
      });
    });
  });
}

/** True when something accepts TCP connections on 127.0.0.1:`port` (1 s timeout). */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Runs `{ ping: 1 }` on the server (2 s timeouts); throws when it does not answer. */
export async function ping(uri: string): Promise<void> {
  const client = new mongoose.mongo.MongoClient(uri, { serverSelectionTimeoutMS: 2000, connectTimeoutMS: 2000 });
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
  } finally {
    await client.close().catch(() => {});
  }
}
