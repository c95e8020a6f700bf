/**
 * `persistent-task-status/embedded`: a server for users' own code whose data
 * stays in a folder they name, on a port they may fix, shared by processes
 * that name the same folder, and a clear word when none can be had.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DryMongoBinary } from 'mongodb-memory-server';
import mongoose from 'mongoose';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EmbeddedServerError, startEmbeddedMongo, type EmbeddedMongo } from '../src/embedded/index.js';
import { getFreePort } from '../src/embedded/shared.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-embedded-test-'));
const started: EmbeddedMongo[] = [];
const quiet = { useMongodbUri: false, download: false } as const;
afterEach(async () => {
  for (const s of started.splice(0)) await s.stop();
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function start(dataDir: string, extra: Partial<Parameters<typeof startEmbeddedMongo>[0]> = {}) {
  const lines: string[] = [];
  const server = await startEmbeddedMongo({ dataDir, log: (l) => lines.push(l), ...quiet, ...extra });
  started.push(server);
  return { server, lines };
}

async function withDb<T>(uri: string, fn: (c: mongoose.Connection) => Promise<T>): Promise<T> {
  const c = await mongoose.createConnection(uri, { dbName: 'embedded_test' }).asPromise();
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

describe('startEmbeddedMongo', () => {
  it('keeps data in the named folder: a second start finds what the first wrote', async () => {
    const dataDir = path.join(tmp, 'resume');
    const first = await start(dataDir);
    expect(first.server.dataDir).toBe(dataDir);
    await withDb(first.server.uri, (c) => c.collection('jobs').insertOne({ _id: 'kept' as never, n: 1 }));
    await first.server.stop();
    started.length = 0;

    const second = await start(dataDir);
    const doc = await withDb(second.server.uri, (c) => c.collection('jobs').findOne({ _id: 'kept' as never }));
    expect(doc).toMatchObject({ n: 1 });
  });

  it('listens on the port it is given', async () => {
    const port = await getFreePort();
    const { server } = await start(path.join(tmp, 'port'), { port });
    expect(server.uri).toBe(`mongodb://127.0.0.1:${port}/`);
    await withDb(server.uri, (c) => c.db!.command({ ping: 1 }));
  });

  it('a second start on a folder whose server runs shares that server, and its stop() leaves it running', async () => {
    const dataDir = path.join(tmp, 'shared');
    const owner = await start(dataDir);
    const guest = await start(dataDir);
    expect(guest.server.uri).toBe(owner.server.uri);
    expect(guest.lines.join('\n')).toMatch(/using the \S+ server that process \d+ runs on/);
    await guest.server.stop();
    await withDb(owner.server.uri, (c) => c.db!.command({ ping: 1 }));
  });

  it('uses MONGODB_URI when set, starting nothing', async () => {
    const saved = process.env.MONGODB_URI;
    process.env.MONGODB_URI = 'mongodb://db.example:27017/';
    try {
      const server = await startEmbeddedMongo({ dataDir: path.join(tmp, 'external'), log: () => {} });
      expect(server).toMatchObject({ kind: 'external', uri: 'mongodb://db.example:27017/' });
    } finally {
      if (saved === undefined) delete process.env.MONGODB_URI;
      else process.env.MONGODB_URI = saved;
    }
  });

  it('requires a data folder', async () => {
    await expect(startEmbeddedMongo({} as never)).rejects.toThrow(/dataDir/);
  });
});

// Only meaningful where no mongod is at hand (as in CI here).
const atHand =
  Boolean(process.env.MONGOMS_SYSTEM_BINARY) ||
  (process.env.PATH ?? '').split(path.delimiter).some((d) => d && fs.existsSync(path.join(d, 'mongod'))) ||
  Boolean(await DryMongoBinary.locateBinary(DryMongoBinary.getEnsuredOptions()));

describe('falling back', () => {

  it.skipIf(atHand)('when mongod cannot be downloaded, falls back to FerretDB within seconds and says why in one line', async () => {
    const saved = process.env.MONGOMS_DOWNLOAD_MIRROR;
    process.env.MONGOMS_DOWNLOAD_MIRROR = 'https://mongod-download.invalid';
    const t0 = Date.now();
    try {
      const { server, lines } = await start(path.join(tmp, 'fallback'), { download: true });
      expect(server.kind).toBe('ferretdb');
      expect(Date.now() - t0).toBeLessThan(15_000);
      const why = lines.filter((l) => l.includes('no mongod'));
      expect(why).toHaveLength(1);
      expect(why[0]).toMatch(/no mongod: cannot reach the mongod download host \(.*mongod-download\.invalid.*\); using FerretDB/);
    } finally {
      if (saved === undefined) delete process.env.MONGOMS_DOWNLOAD_MIRROR;
      else process.env.MONGOMS_DOWNLOAD_MIRROR = saved;
    }
  });

  it('without Go and without mongod, fails with an error that says what to install or set', async () => {
    const saved = { PATH: process.env.PATH, PTS_FERRETDB_CACHE_DIR: process.env.PTS_FERRETDB_CACHE_DIR };
    const emptyBin = fs.mkdtempSync(path.join(tmp, 'bin-'));
    process.env.PATH = emptyBin; // no `go`, no `mongod`
    process.env.PTS_FERRETDB_CACHE_DIR = fs.mkdtempSync(path.join(tmp, 'cache-')); // nothing built yet
    try {
      const error = await startEmbeddedMongo({ dataDir: path.join(tmp, 'nogo'), log: () => {}, ...quiet }).catch((e) => e);
      expect(error).toBeInstanceOf(EmbeddedServerError);
      expect(error.code).toBe('PTS_EMBEDDED_SERVER');
      expect(error.message).toMatch(/no Go toolchain/);
      expect(error.message).toMatch(/npm install -D mongodb-memory-server/);
      expect(error.message).toMatch(/set MONGODB_URI/);
    } finally {
      process.env.PATH = saved.PATH;
      if (saved.PTS_FERRETDB_CACHE_DIR === undefined) delete process.env.PTS_FERRETDB_CACHE_DIR;
      else process.env.PTS_FERRETDB_CACHE_DIR = saved.PTS_FERRETDB_CACHE_DIR;
    }
  });
});
