/** Helpers for the tests of the 0.0.1 compatibility API. */
import { randomBytes } from 'node:crypto';
import { createClient, type CompatClient } from '../../src/index.js';
import { databasePerFile, type TestDatabase } from './database.js';

/** What a node-style callback was called with, and whether it was called before the method returned. */
export interface CallbackCall {
  args: unknown[];
  sync: boolean;
}

/** Calls a callback-style method and resolves with the callback's first call. */
export function viaCallback(invoke: (cb: (...args: unknown[]) => void) => unknown): Promise<CallbackCall> {
  return new Promise((resolve) => {
    let returned = false;
    invoke((...args) => resolve({ args, sync: !returned }));
    returned = true;
  });
}

/** A container name unique within a test file's database. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** A database for this test file and a 0.0.1 client bound to it (created on first use). */
export function compatClientPerFile(): { db: () => TestDatabase; api: () => CompatClient } {
  const db = databasePerFile();
  let api: CompatClient | undefined;
  return { db, api: () => (api ??= createClient({ connection: db().connection })) };
}
