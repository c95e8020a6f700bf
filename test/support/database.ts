/**
 * Per-test-file databases on the server started by ./global-setup.ts.
 *
 *   const db = databasePerFile();   // at the top of a test file (or describe)
 *   // in tests and hooks:
 *   db().connection                 // a dedicated mongoose connection (never the default one)
 *   db().uriWithDb                  // a full URI for child processes
 *
 * or, when a file needs its own setup around it:
 *
 *   const db = await useTestDatabase();
 *   afterAll(() => db.drop());
 */
import { randomBytes } from 'node:crypto';
import mongoose from 'mongoose';
import { afterAll, beforeAll, inject } from 'vitest';

/** URI of the test server (no database name). */
export function testMongoUri(): string {
  let uri: string | undefined;
  try {
    uri = inject('mongoUri');
  } catch {
    // not running under vitest with our global setup
  }
  uri ||= process.env.PTS_TEST_MONGODB_URI || process.env.MONGODB_URI;
  if (!uri) {
    throw new Error(
      'No test MongoDB: run the tests with vitest (vitest.config.ts starts a server in test/support/global-setup.ts) or set MONGODB_URI.',
    );
  }
  return uri;
}

/** Which kind of server backs this run ('ferretdb' lacks some MongoDB features). */
export function testMongoKind(): string {
  let kind: string | undefined;
  try {
    kind = inject('mongoServerKind');
  } catch {
    // not running under vitest with our global setup
  }
  return kind || process.env.PTS_TEST_MONGODB_KIND || 'external';
}

/** A fresh, unique database name: `pts_test_<12 hex chars>`. */
export function randomDbName(): string {
  return `pts_test_${randomBytes(6).toString('hex')}`;
}

/**
 * Puts `dbName` into a MongoDB connection string, replacing any database
 * already in its path and keeping hosts, credentials and query options.
 * When the URI has credentials but no `authSource`, one is added so that
 * authentication still happens against the database the original URI meant
 * (`admin` when it named none).
 */
export function uriWithDb(uri: string, dbName: string): string {
  const schemeEnd = uri.indexOf('://');
  if (schemeEnd < 0) throw new Error(`not a MongoDB connection string: ${uri}`);
  const afterScheme = schemeEnd + 3;
  const rest = uri.slice(afterScheme);
  // Host list ends at the first '/' or '?' (credentials must have those percent-encoded).
  const hostEnd = rest.search(/[/?]/);
  const hosts = hostEnd < 0 ? rest : rest.slice(0, hostEnd);
  let tail = hostEnd < 0 ? '' : rest.slice(hostEnd);
  let oldDb = '';
  if (tail.startsWith('/')) {
    const q = tail.indexOf('?');
    oldDb = decodeURIComponent(q < 0 ? tail.slice(1) : tail.slice(1, q));
    tail = q < 0 ? '' : tail.slice(q);
  }
  const params = new URLSearchParams(tail.startsWith('?') ? tail.slice(1) : '');
  const hasCredentials = hosts.includes('@');
  if (hasCredentials && !params.has('authSource')) params.set('authSource', oldDb || 'admin');
  const query = params.toString();
  return `${uri.slice(0, afterScheme)}${hosts}/${encodeURIComponent(dbName)}${query ? `?${query}` : ''}`;
}

export interface TestDatabase {
  /** Server URI without a database name. */
  uri: string;
  dbName: string;
  /** `uri` with `dbName` in it, for child processes and engine APIs that take a URI. */
  uriWithDb: string;
  /** A dedicated connection to `dbName` (not mongoose's default connection). */
  connection: mongoose.Connection;
  /** Drops the database and closes the connection. Idempotent. */
  drop(): Promise<void>;
}

export async function useTestDatabase(): Promise<TestDatabase> {
  const uri = testMongoUri();
  const dbName = randomDbName();
  const connection = mongoose.createConnection(uri, { dbName, serverSelectionTimeoutMS: 15_000 });
  await connection.asPromise();
  let dropped: Promise<void> | undefined;
  return {
    uri,
    dbName,
    uriWithDb: uriWithDb(uri, dbName),
    connection,
    drop: () =>
      (dropped ??= (async () => {
        try {
          await connection.dropDatabase();
        } finally {
          await connection.close();
        }
      })()),
  };
}

/**
 * Registers a beforeAll that creates a fresh test database and an afterAll
 * that drops it, in the current scope (file or describe block). Returns a
 * getter for the database; calling it before that beforeAll has run (e.g. at
 * module level or while vitest collects a describe block) throws.
 */
export function databasePerFile(): () => TestDatabase {
  let db: TestDatabase | undefined;
  beforeAll(async () => {
    db = await useTestDatabase();
  });
  afterAll(() => db?.drop());
  return () => {
    if (!db) {
      throw new Error(
        'databasePerFile(): the test database does not exist yet; use it inside tests or hooks, after its beforeAll has run (or that beforeAll failed: see its error)',
      );
    }
    return db;
  };
}
