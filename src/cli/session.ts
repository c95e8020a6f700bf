import mongoose, { type Connection } from 'mongoose';
import { openStore } from '../status/inspect.js';
import { connectionDatabase, defaultDatabaseNotice } from '../store/mongo/database-name.js';
import type { TaskStore } from '../store/types.js';
import { CliError, describeError, ExitCode, oneLine, usageError } from './errors.js';
import type { CliIo } from './io.js';

/** Options every command accepts (from the program). */
export interface GlobalOptions {
  uri?: string;
  prefix: string;
}

/** An open connection and the store over it. */
export interface Session {
  connection: Connection;
  store: TaskStore;
  /** `{ connection, collectionPrefix }`, for `getContainerStatus` and friends. */
  source: { connection: Connection; collectionPrefix: string; readOnly: boolean };
}

/** How long to look for a server before giving up. */
export const SERVER_SELECTION_TIMEOUT_MS = 5000;

/** The URI to use: `--uri`, else `MONGODB_URI`; throws a usage error when neither is set or it is not a MongoDB URI. */
export function resolveUri(options: GlobalOptions, io: CliIo): string {
  const uri = (options.uri ?? io.env.MONGODB_URI ?? '').trim();
  if (!uri) throw usageError('MONGODB_URI is not set (set it or pass --uri <uri>)');
  if (!/^mongodb(\+srv)?:\/\//.test(uri)) {
    throw usageError('invalid MongoDB URI: it must start with "mongodb://" or "mongodb+srv://"');
  }
  return uri;
}

/** The host part of a URI, without credentials, for messages. */
export function describeHosts(uri: string): string {
  const rest = uri.replace(/^mongodb(\+srv)?:\/\//, '');
  const end = rest.search(/[/?]/);
  const hosts = end < 0 ? rest : rest.slice(0, end);
  const at = hosts.lastIndexOf('@');
  return at < 0 ? hosts : hosts.slice(at + 1);
}

/**
 * Connects with a dedicated connection, opens the store, runs `fn`, and always
 * closes the connection so the process can exit.
 */
export async function withSession<T>(options: GlobalOptions, io: CliIo, fn: (session: Session) => Promise<T>): Promise<T> {
  const uri = resolveUri(options, io);
  let connection: Connection;
  try {
    connection = mongoose.createConnection(uri, { serverSelectionTimeoutMS: SERVER_SELECTION_TIMEOUT_MS });
  } catch (error) {
    throw connectError(error, uri);
  }
  try {
    try {
      await connection.asPromise();
    } catch (error) {
      throw connectError(error, uri);
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

function connectError(error: unknown, uri: string): CliError {
  const name = (error as { name?: unknown })?.name;
  if (name === 'MongoParseError' || name === 'MongoAPIError') {
    return new CliError(`invalid MongoDB URI: ${oneLine(String((error as Error).message))}`, ExitCode.USAGE, { cause: error });
  }
  return new CliError(`cannot connect to MongoDB at ${describeHosts(uri)}: ${describeError(error)}`, ExitCode.ERROR, {
    cause: error,
  });
}
