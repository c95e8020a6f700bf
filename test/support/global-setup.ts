/**
 * Vitest global setup: starts ONE MongoDB-compatible server for the whole run
 * (see tools/mongo-server.ts for how it is chosen) and hands its URI to the
 * tests via `inject('mongoUri')` (use `testMongoUri()` from ./database.ts).
 * Each test file then works in its own randomly named database.
 */
import type { TestProject } from 'vitest/node';
import { startMongoServer, type MongoServer, type MongoServerKind } from '../../tools/mongo-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Server URI without a database name, e.g. `mongodb://127.0.0.1:40123/`. */
    mongoUri: string;
    /** Which server backs the run: 'external' (MONGODB_URI), 'mongodb-memory-server' or 'ferretdb'. */
    mongoServerKind: MongoServerKind;
  }
}

let server: MongoServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  server = await startMongoServer({});
  project.provide('mongoUri', server.uri);
  project.provide('mongoServerKind', server.kind);
  process.env.PTS_TEST_MONGODB_URI = server.uri;
  process.env.PTS_TEST_MONGODB_KIND = server.kind;
}

export async function teardown(): Promise<void> {
  await server?.stop();
  server = undefined;
}
