import mongoose, { type Connection } from 'mongoose';
import { openStore } from '../status/inspect.js';
import { MAX_TIMER_MS } from '../definition/options.js';
import { hostsOfUri } from '../store/mongo/connect.js';
import { connectionDatabase, defaultDatabaseNotice } from '../store/mongo/database-name.js';
import type { TaskStore } from '../store/types.js';
import { CliError, describeError, ExitCode, oneLine, usageError } from './errors.js';
import type { CliIo } from './io.js';

/** Options every command accepts (from the program). */
export interface GlobalOptions {
  uri?: string;
  prefix: string;
  /** `--server-timeout` / `PTS_SERVER_TIMEOUT_MS`, as given (ms). */
  serverTimeout?: string;
}

/** An open connection and the store over it. */
export interface Session {
  connection: Connection;
  store: TaskStore;
  /** `{ connection, collectionPrefix }`, for `getContainerStatus` and friends. */
  source: { connection: Connection; collectionPrefix: string; readOnly: boolean };
}

/** How long to look for a server before giving up, unless `--server-timeout` says otherwise. */
export const SERVER_SELECTION_TIMEOUT_MS = 5000;

/**
 * The URI to use: `--uri`, else `MONGODB_URI`. Throws a usage error (exit 2)
 * when neither is set or it is malformed (see {@link uriProblem}).
 */
export function resolveUri(options: GlobalOptions, io: CliIo): string {
  const uri = (options.uri ?? io.env.MONGODB_URI ?? '').trim();
  if (!uri) throw usageError('MONGODB_URI is not set (set it or pass --uri <uri>)');
  const problem = uriProblem(uri);
  if (problem) throw usageError(`invalid MongoDB URI: ${problem}`);
  return uri;
}

/** The host part of a URI, without credentials, for messages. */
export const describeHosts = hostsOfUri;

/**
 * What is wrong with a MongoDB URI that the driver would only report late or
 * obscurely, or null: the scheme, each host's port (1-65535) and the
 * database name (MongoDB refuses `/\. "$*<>:|?` and more than 63 bytes).
 */
export function uriProblem(uri: string): string | null {
  const m = /^mongodb(\+srv)?:\/\/([^/?]*)(\/[^?]*)?(\?.*)?$/.exec(uri);
  if (!m) return 'it must start with "mongodb://" or "mongodb+srv://"';
  const hosts = m[2]!.slice(m[2]!.lastIndexOf('@') + 1);
  if (!hosts) return 'it names no host';
  for (const host of hosts.split(',')) {
    const port = /^(?:\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(host)?.[1];
    if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) {
      return `port ${JSON.stringify(port)} of host "${host.replace(/:.*$/, '')}" is not a number from 1 to 65535`;
    }
  }
  let db: string;
  try {
    db = decodeURIComponent((m[3] ?? '').slice(1));
  } catch {
    return 'the database name is not valid percent-encoding';
  }
  const bad = /[/\\. "$*<>:|?\u0000]/.exec(db);
  if (bad) return `database name ${JSON.stringify(db)} contains ${JSON.stringify(bad[0])}, which MongoDB does not allow`;
  if (Buffer.byteLength(db) > 63) return `database name ${JSON.stringify(db)} is longer than 63 bytes`;
  return null;
}

/** `--server-timeout` in ms; a usage error when it is not a positive whole number within Node's timer range. */
export function resolveServerTimeout(options: GlobalOptions): number {
  const raw = options.serverTimeout;
  if (raw === undefined || raw === '') return SERVER_SELECTION_TIMEOUT_MS;
  const ms = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !(ms >= 1 && ms <= MAX_TIMER_MS)) {
    throw usageError(`invalid --server-timeout "${raw}": expected milliseconds from 1 to ${MAX_TIMER_MS}`);
  }
  return ms;
}

/**
 * Connects with a dedicated connection, opens the store, runs `fn`, and always
 * closes the connection so the process can exit.
 */
export async function withSession<T>(options: GlobalOptions, io: CliIo, fn: (session: Session) => Promise<T>): Promise<T> {
  const uri = resolveUri(options, io);
  const timeoutMs = resolveServerTimeout(options);
  let connection: Connection;
  try {
    connection = mongoose.createConnection(uri, { serverSelectionTimeoutMS: timeoutMs });
  } catch (error) {
    throw connectError(error, uri, timeoutMs);
  }
  try {
    try {
      await connection.asPromise();
    } catch (error) {
      throw connectError(error, uri, timeoutMs);
    }
    // Say so instead of silently reading the driver's default database.
    if (connectionDatabase(connection).defaulted) io.stderr.write(`pts: note: ${defaultDatabaseNotice()}\n`);
    const collectionPrefix = options.prefix;
    // Looking must not write: no collections or indexes are created from here
    // (retry and cancel only append transitions, keyed by _id).
    const store = await openStore({ connection, collectionPrefix, readOnly: true });
    return await fn({ connection, store, source: { connection, collectionPrefix, readOnly: true } });
  } finally {
    await connection.close(true).catch(() => undefined);
  }
}

/** URI errors the driver reports under other names (e.g. "Unable to parse host:port with URL"). */
const URI_ERROR_NAMES = new Set(['MongoParseError', 'MongoAPIError', 'MongoInvalidArgumentError', 'MongoRuntimeError']);

function connectError(error: unknown, uri: string, timeoutMs: number): CliError {
  const name = (error as { name?: unknown })?.name;
  if (typeof name === 'string' && URI_ERROR_NAMES.has(name)) {
    return new CliError(`invalid MongoDB URI: ${oneLine(String((error as Error).message))}`, ExitCode.USAGE, { cause: error });
  }
  const timedOut = typeof name === 'string' && /ServerSelectionError$/.test(name);
  const why = timedOut ? `timed out after ${timeoutMs} ms (${describeError(error)})` : describeError(error);
  return new CliError(`cannot connect to MongoDB at ${describeHosts(uri)}: ${why}`, ExitCode.ERROR, { cause: error });
}
