/**
 * The first choice of the embedded server: a real mongod through
 * mongodb-memory-server (an optional peer dependency). It may download mongod
 * once (about 100 MB, cached in ~/.cache/mongodb-binaries). Where that cannot
 * work (no such package, no network), it gives up quickly with a one-line
 * reason so that the caller can fall back to FerretDB.
 */
import dns from 'node:dns/promises';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type * as Mms from 'mongodb-memory-server';
import { firstLine, PREFIX, withTimeout } from './shared.js';
import type { EmbeddedMongo } from './types.js';

/** Options of {@link tryMemoryServer}. */
export interface MemoryServerOptions {
  /** mongod's data folder (kept); undefined: temporary data. */
  dbPath: string | undefined;
  /** TCP port; undefined: a free one. */
  port: number | undefined;
  /** May mongodb-memory-server download a mongod when none is at hand? */
  allowDownload: boolean;
  log: (line: string) => void;
}

/** A started mongod, or why none was started (one line). */
export type MemoryServerAttempt = { server: EmbeddedMongo } | { skipped: string };

const START_TIMEOUT_MS = 60_000;
const DOWNLOAD_TIMEOUT_MS = 10 * 60_000;
const DNS_PROBE_TIMEOUT_MS = 5_000;

async function loadMms(): Promise<typeof Mms | undefined> {
  for (const name of ['mongodb-memory-server', 'mongodb-memory-server-core']) {
    try {
      const mod = (await import(name)) as typeof Mms & { default?: typeof Mms };
      return mod.MongoBinary ? mod : ((mod.default as unknown as { MongoBinary?: unknown })?.MongoBinary ? mod.default : mod);
    } catch {
      // not installed: try the next name
    }
  }
  return undefined;
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A mongod already on this machine, and how it was found; undefined if none. */
async function mongodAtHand(mms: typeof Mms): Promise<{ binary: string; how: string } | undefined> {
  const env = process.env.MONGOMS_SYSTEM_BINARY?.trim();
  if (env) return { binary: env, how: `MONGOMS_SYSTEM_BINARY=${env}` };
  const onPath = findOnPath('mongod');
  if (onPath) return { binary: onPath, how: `mongod on PATH (${onPath})` };
  try {
    const { DryMongoBinary } = mms;
    const cached = await withTimeout(
      DryMongoBinary.locateBinary(DryMongoBinary.getEnsuredOptions()),
      10_000,
      'looking for a cached mongod',
    );
    if (cached) return { binary: cached, how: `cached mongod (${cached})` };
  } catch {
    // treat as "no cached binary"
  }
  return undefined;
}

/**
 * Fails within seconds when the download host cannot even be resolved (no
 * network), instead of mongodb-memory-server's retries with backoff. Skipped
 * behind an HTTP proxy, where local DNS says nothing.
 */
async function probeDownloadHost(): Promise<string | undefined> {
  const proxy = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy'].some((k) => process.env[k]);
  if (proxy) return undefined;
  const base = process.env.MONGOMS_DOWNLOAD_URL || process.env.MONGOMS_DOWNLOAD_MIRROR || 'https://fastdl.mongodb.org';
  let host: string;
  try {
    host = new URL(base).hostname;
  } catch {
    return undefined;
  }
  try {
    await withTimeout(dns.lookup(host), DNS_PROBE_TIMEOUT_MS, `resolving ${host}`);
    return undefined;
  } catch (err) {
    return `cannot reach the mongod download host (${firstLine(err)})`;
  }
}

/** Starts mongod through mongodb-memory-server, or says in one line why not. */
export async function tryMemoryServer(o: MemoryServerOptions): Promise<MemoryServerAttempt> {
  const mms = await loadMms();
  if (!mms) return { skipped: 'mongodb-memory-server is not installed' };

  let found = await mongodAtHand(mms);
  if (!found) {
    if (!o.allowDownload) return { skipped: 'no mongod at hand and downloading one is off' };
    const unreachable = await probeDownloadHost();
    if (unreachable) return { skipped: unreachable };
    o.log(`${PREFIX} downloading mongod with mongodb-memory-server (first run only)…`);
    try {
      const binary = await withTimeout(mms.MongoBinary.getPath(), DOWNLOAD_TIMEOUT_MS, 'downloading mongod');
      found = { binary, how: `downloaded mongod (${binary})` };
    } catch (err) {
      return { skipped: `mongod download failed (${firstLine(err)})` };
    }
  }

  o.log(`${PREFIX} starting mongod via mongodb-memory-server: ${found.how}`);
  if (o.dbPath) await fsp.mkdir(o.dbPath, { recursive: true });
  const creating = mms.MongoMemoryServer.create({
    instance: {
      ...(o.dbPath ? { dbPath: o.dbPath, storageEngine: 'wiredTiger' as const } : {}),
      ...(o.port !== undefined ? { port: o.port } : {}),
    },
    binary: { systemBinary: found.binary },
  });
  try {
    const server = await withTimeout(creating, START_TIMEOUT_MS, 'starting mongod');
    const persistent = o.dbPath !== undefined;
    let stopped: Promise<void> | undefined;
    return {
      server: {
        uri: server.getUri(),
        kind: 'mongodb-memory-server',
        dataDir: o.dbPath,
        stop: () => (stopped ??= server.stop({ doCleanup: !persistent, force: false }).then(() => undefined)),
      },
    };
  } catch (err) {
    // If it is still starting, make sure it does not linger once it does start.
    creating.then((s) => s.stop()).catch(() => {});
    return { skipped: `mongod did not start (${firstLine(err)})` };
  }
}
