/**
 * One causally consistent session per store: every read the store makes
 * carries the causal point of the store's earlier writes (`afterClusterTime`),
 * so after a failover a read cannot miss the store's own acknowledged writes.
 * FerretDB and standalone servers return no operation times, so the test
 * server's replies get one injected by tools/tcp-proxy.ts, as a replica set
 * would send it; the commands the driver then sends are observed.
 */
import mongoose, { type Connection } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TASK_OPTIONS, defineContainer, MongoStore, Runner } from '../src/index.js';
import { openCausalProxy, expectReadsAfter, type CausalProxy } from './support/causal-proxy.js';
import { databasePerFile, testMongoKind } from './support/database.js';
import { snapshotOf, stateOf } from './support/engine.js';

const db = databasePerFile();
let proxy: CausalProxy;
let conn: Connection;
beforeAll(async () => {
  proxy = await openCausalProxy(db());
  conn = proxy.conn;
});
afterAll(() => proxy?.close());

const task = (name: string) => ({ name, dependsOn: [], handler: name, input: null, options: DEFAULT_TASK_OPTIONS, dynamic: false, addedBy: null });
const { Timestamp } = mongoose.mongo;

describe('causal session', () => {
  it('reads after a write carry the write\'s operation time as afterClusterTime, and the same lsid is never in flight twice', async () => {
    const store = await MongoStore.create(conn, { causalConsistency: 'always' });
    await store.createContainer({ name: 'causal', failFast: false, definition: null });
    await store.addTasks('causal', [task('a'), task('b')]);
    const opTime = new Timestamp({ t: 4_000_000_000, i: 7 });
    await proxy.withOperationTime((command) => command.insert === 'pts_transitions', opTime, async () => {
      const claims = await Promise.all(['a', 'b'].map((t) => store.claimTask({ container: 'causal', task: t, expectedToken: 0, claim: { runnerId: 'me', attempt: 1, leaseMs: 60_000, checkpoint: null } })));
      expect(claims.map((c) => c?.token)).toEqual([1, 1]);
      proxy.reset();
      await Promise.all([store.readLog('causal', 'a', 0), store.readLog('causal', 'b', 0), store.loadSnapshot('causal'), store.loadSnapshot('causal')]);
    });
    expectReadsAfter(proxy.started, opTime);
    expect(proxy.maxInFlight).toBe(1); // concurrent operations, each in its own driver session
  });

  it('a run with the causal session on succeeds on the test server (sessions accepted, no operation times)', async () => {
    const store = await MongoStore.create(conn, { causalConsistency: 'always' });
    const runs: string[] = [];
    const def = defineContainer('causal-run')
      .task('a', async (ctx) => runs.push(`a#${ctx.attempt}`))
      .task('b', { dependsOn: ['a'] }, async (ctx) => runs.push(`b#${ctx.attempt}`));
    proxy.reset();
    expect((await (await Runner.create({ store, container: def, pollMs: 30 })).run()).status).toBe('succeeded');
    expect(runs).toEqual(['a#1', 'b#1']);
    expect(stateOf(await snapshotOf(db().connection, 'causal-run'), 'b').status).toBe('succeeded');
    expect(proxy.started.some((c) => c.command.lsid !== undefined)).toBe(true);
  });

  it("'auto' uses no causal session on the test server when it is FerretDB or a standalone (measured with hello)", async () => {
    const hello = (await conn.db!.admin().command({ hello: 1 })) as { setName?: string; logicalSessionTimeoutMinutes?: number };
    const store = await MongoStore.create(conn);
    const causal = (store as unknown as { ctx: { causal: unknown } }).ctx.causal;
    if (testMongoKind() === 'ferretdb') expect(hello.setName).toBeUndefined();
    expect(causal === null).toBe(hello.setName === undefined);
  });

  it('refuses an unknown causalConsistency value, naming the option', async () => {
    await expect(MongoStore.create(conn, { causalConsistency: 'sometimes' as never })).rejects.toThrow(/causalConsistency/);
  });
});
