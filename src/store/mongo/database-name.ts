import type { Connection } from 'mongoose';

/** The database a connection uses, and whether mongoose fell back to its default. */
export interface ConnectionDatabase {
  /** The database name, e.g. `jobs`. */
  name: string;
  /**
   * True when neither the connection string nor the `dbName` option named a
   * database, so the driver uses its default, `test`.
   */
  defaulted: boolean;
}

/** True when a `mongodb://` or `mongodb+srv://` string has a database in its path. */
export function uriNamesDatabase(uri: string): boolean {
  const rest = uri.replace(/^mongodb(\+srv)?:\/\//, '');
  const hostEnd = rest.search(/[/?]/);
  if (hostEnd < 0 || rest[hostEnd] !== '/') return false;
  const q = rest.indexOf('?', hostEnd);
  return (q < 0 ? rest.slice(hostEnd + 1) : rest.slice(hostEnd + 1, q)).length > 0;
}

/**
 * Which database an (opened or opening) mongoose connection uses. Reads
 * mongoose's own record of how it was opened (the same in mongoose 8 and 9);
 * a connection of unknown origin is never reported as defaulted.
 */
export function connectionDatabase(connection: Connection): ConnectionDatabase {
  const c = connection as Connection & { $dbName?: string | null; _connectionString?: string };
  const name = connection.db?.databaseName ?? connection.name ?? 'test';
  const uri = c._connectionString;
  const defaulted = name === 'test' && c.$dbName == null && typeof uri === 'string' && !uriNamesDatabase(uri);
  return { name, defaulted };
}

/** The one-line notice for a defaulted database (CLI stderr, Runner warning). */
export function defaultDatabaseNotice(): string {
  return 'the MongoDB URI names no database, so "test" is used; name one in the URI (mongodb://host/<database>) or with mongoose\'s dbName option';
}

let warned = false;

/**
 * Emits one process warning (code `PTS_DEFAULT_DATABASE`) the first time a
 * defaulted database is used in this process; silent otherwise.
 */
export function warnIfDefaultDatabase(database: ConnectionDatabase): void {
  if (!database.defaulted || warned) return;
  warned = true;
  process.emitWarning(`persistent-task-status: ${defaultDatabaseNotice()}`, { code: 'PTS_DEFAULT_DATABASE' });
}
