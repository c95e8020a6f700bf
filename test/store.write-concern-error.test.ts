/**
 * A reply carrying a `writeConcernError` proves nothing durable: the write
 * landed on the server it reached, but the write concern was not confirmed
 * (on a replica set, a failover may roll it back). The store retries such a
 * write, entry by entry, and counts it only once a reply without one (or a
 * majority read-back) confirms it. The error is injected into the real
 * server's replies by tools/tcp-proxy.ts; the writes themselves are real.
 */
import mongoose, { type Connection } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../tools/tcp-proxy.js';
import { DEFAULT_TASK_OPTIONS, defineContainer, MongoStore, Runner } from '../src/index.js';
import { databasePerFile, uriWithDb } from './support/database.js';
import { snapshotOf, stateOf } from './support/engine.js';

const db = databasePerFile();
let proxy: TcpProxy;
let viaProxy: Connection;
beforeAll(async () => {
  const server = new URL(db().uri);
  proxy = await startTcpProxy({ port: Number(server.port), host: server.hostname });
  const uri = uriWithDb(`mongodb://127.0.0.1:${proxy.port}/`, db().dbName);
  viaProxy = await mongoose.createConnection(`${uri}${uri.includes('?') ? '&' : '?'}directConnection=true`).asPromise();
});
afterAll(async () => {
  await viaProxy?.close();
  await proxy?.close();
});

const WRITE_CONCERN_ERROR = {
  code: 64,
  codeName: 'WriteConcernFailed',
  errmsg: 'waiting for replication timed out (injected by the test proxy)',
  errInfo: { wtimeout: true },
};

/** Adds a writeConcernError to the next `times` replies of inserts into the log (Infinity: all). */
function injectIntoLogInserts(times: number): { injected: number } {
  const hits = { injected: 0 };
  proxy.rewriteReplies((command) => {
    if (command.insert !== 'pts_transitions' || hits.injected >= times) return undefined;
    hits.injected++;
    return (reply) => ({ ...reply, writeConcernError: WRITE_CONCERN_ERROR });
  });
  return hits;
}

const task = (name: string) => ({ name, dependsOn: [], handler: name, input: null, options: DEFAULT_TASK_OPTIONS, dynamic: false, addedBy: null });
const claimOf = (runnerId: string) => ({ runnerId, attempt: 1, leaseMs: 60_000, checkpoint: null });

describe('writeConcernError in a reply', () => {
  it('claims sent in one insert are retried one by one and granted only after a reply without one', async () => {
    const store = await MongoStore.create(viaProxy);
    await store.createContainer({ name: 'wce-batch', failFast: false, definition: null });
    await store.addTasks('wce-batch', [task('a'), task('b')]);
    const hits = injectIntoLogInserts(3);
    const grantedAfter: number[] = [];
    try {
      // Same turn: one insert for both; its reply, and the first retry of each, carry the error.
      const claims = await Promise.all(
        ['a', 'b'].map((t) =>
          store.claimTask({ container: 'wce-batch', task: t, expectedToken: 0, claim: claimOf('me') }).then((c) => {
            grantedAfter.push(hits.injected);
            return c;
          }),
        ),
      );
      expect(claims.map((c) => c?.token)).toEqual([1, 1]);
      expect(hits.injected).toBe(3);
      expect(grantedAfter).toEqual([3, 3]); // never on a reply that carried the error
    } finally {
      proxy.rewriteReplies(null);
    }
    const snapshot = await snapshotOf(db().connection, 'wce-batch');
    expect(stateOf(snapshot, 'a')).toMatchObject({ status: 'running', runnerId: 'me', token: 1 });
    expect(stateOf(snapshot, 'b')).toMatchObject({ status: 'running', runnerId: 'me', token: 1 });
  });

  it('while every reply carries one, nothing is counted as durable: the append fails after its retries (transient)', async () => {
    const store = await MongoStore.create(viaProxy, { writeRetryMs: 1_000 });
    await store.createContainer({ name: 'wce-always', failFast: false, definition: null });
    await store.addTasks('wce-always', [task('a')]);
    const hits = injectIntoLogInserts(Number.POSITIVE_INFINITY);
    let error: unknown;
    try {
      error = await store.claimTask({ container: 'wce-always', task: 'a', expectedToken: 0, claim: claimOf('me') }).then(
        (c) => new Error(`granted: ${JSON.stringify(c)}`),
        (e: unknown) => e,
      );
    } finally {
      proxy.rewriteReplies(null);
    }
    expect((error as Error).name).toMatch(/WriteConcern|MongoBulkWriteError/);
    expect((error as Error).message).toMatch(/write concern|replication timed out/);
    expect(hits.injected).toBeGreaterThanOrEqual(2); // retried, not given up at once
  });

  it('a runner whose first log writes get one runs each handler once and succeeds', async () => {
    const runs: string[] = [];
    const def = defineContainer('wce-run')
      .task('a', async (ctx) => runs.push(`a#${ctx.attempt}`))
      .task('b', async (ctx) => runs.push(`b#${ctx.attempt}`))
      .task('c', { dependsOn: ['a', 'b'] }, async (ctx) => runs.push(`c#${ctx.attempt}`));
    const runner = await Runner.create({ connection: viaProxy, container: def, pollMs: 30, checkpointIntervalMs: 0 });
    const hits = injectIntoLogInserts(6);
    try {
      expect((await runner.run()).status).toBe('succeeded');
    } finally {
      proxy.rewriteReplies(null);
    }
    expect(hits.injected).toBe(6);
    expect(runs.sort()).toEqual(['a#1', 'b#1', 'c#1']);
    const snapshot = await snapshotOf(db().connection, 'wce-run');
    for (const t of ['a', 'b', 'c']) expect(stateOf(snapshot, t)).toMatchObject({ status: 'succeeded', attempt: 1, failures: 0, recoveries: 0 });
  });
});
