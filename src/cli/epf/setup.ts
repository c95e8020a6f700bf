/**
 * What every `pts epf` mode needs: the database (MONGODB_URI / --uri, else
 * the embedded server in ./.pts-data) and, for runs, the feed (a URL, or the
 * generated fixture with --fixture).
 */
import path from 'node:path';
import mongoose, { type Connection } from 'mongoose';
import { DEFAULT_DATA_DIR, startEmbeddedMongo } from '../../embedded/index.js';
import { startFixtureFeed } from '../../ingest/epf/fixture/server.js';
import { EpfFeed } from '../../ingest/epf/feed/client.js';
import { CliError, describeError, ExitCode } from '../errors.js';
import { describeHosts, resolveServerTimeout, resolveUri, type GlobalOptions } from '../session.js';
import type { CliIo } from '../io.js';
import type { EpfOutput } from './output.js';
import type { EpfSettings } from './options.js';

/** An open database and how to close it. */
export interface EpfDatabase {
  connection: Connection;
  close(): Promise<void>;
}

/** Opens the database: `--uri` / MONGODB_URI, else the embedded server (data in ./.pts-data, database `epf`). */
export async function openEpfDatabase(globals: GlobalOptions, io: CliIo, out: EpfOutput): Promise<EpfDatabase> {
  const given = globals.uri !== undefined || Boolean(io.env.MONGODB_URI?.trim());
  const uri = given ? resolveUri(globals, io) : undefined;
  const timeoutMs = resolveServerTimeout(globals);
  const server = uri ? undefined : await startEmbeddedMongo({ dataDir: DEFAULT_DATA_DIR, useMongodbUri: false, log: (l) => out.log('info', l) });
  let connection: Connection;
  try {
    connection = await mongoose
      .createConnection(uri ?? server!.uri, { serverSelectionTimeoutMS: timeoutMs, ...(server ? { dbName: 'epf' } : {}) })
      .asPromise();
  } catch (error) {
    await server?.stop().catch(() => undefined);
    throw new CliError(`cannot connect to MongoDB at ${describeHosts(uri ?? server!.uri)}: ${describeError(error)}`, ExitCode.ERROR, { cause: error });
  }
  out.log('info', `database: ${connection.name} (${server ? `embedded ${server.kind}, data in ${DEFAULT_DATA_DIR}` : 'MONGODB_URI'})`, {
    database: connection.name,
  });
  return {
    connection,
    close: async () => {
      await connection.close().catch(() => undefined);
      await server?.stop().catch(() => undefined);
    },
  };
}

/** A feed client and how to stop the fixture behind it, if any. */
export interface EpfFeedSetup {
  feed: EpfFeed;
  auth?: { username: string; password: string };
  stop(): Promise<void>;
}

/** Starts the fixture (with --fixture) or points at the configured feed. */
export async function openEpfFeed(s: EpfSettings, out: EpfOutput, cwd = process.cwd()): Promise<EpfFeedSetup> {
  if (s.feed.kind === 'fixture') {
    const fixture = await startFixtureFeed({
      dir: path.resolve(cwd, '.epf-fixture'),
      layout: s.layout,
      scale: s.feed.scale,
      accessLog: path.resolve(cwd, '.epf-fixture', 'access.log'),
      faults: s.feed.bytesPerSecond ? { trickle: { bytesPerSecond: s.feed.bytesPerSecond } } : {},
    });
    out.log('info', `feed: local fixture at ${fixture.baseUrl} (set EPF_BASE_URL, EPF_USERNAME, EPF_PASSWORD for a real one)`, {
      feed: fixture.baseUrl,
      fixture: true,
    });
    const auth = { username: fixture.username, password: fixture.password };
    return { feed: new EpfFeed({ baseUrl: fixture.baseUrl, ...auth, layout: s.layout }), auth, stop: () => fixture.stop() };
  }
  out.log('info', `feed: ${s.feed.url}`, { feed: s.feed.url });
  const auth = s.feed.username && s.feed.password ? { username: s.feed.username, password: s.feed.password } : undefined;
  return { feed: new EpfFeed({ baseUrl: s.feed.url, ...auth, layout: s.layout }), ...(auth ? { auth } : {}), stop: async () => {} };
}
