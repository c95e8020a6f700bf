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
import { startTcpProxy, type TcpProxy } from '../tools/tcp-proxy.js';
import { DEFAULT_TASK_OPTIONS, defineContainer, MongoStore, Runner } from '../src/index.js';
import { databasePerFile, testMongoKind, uriWithDb } from './support/database.js';
import { snapshotOf, stateOf } from './support/engine.js';

const db = databasePerFile();
let proxy: TcpProxy;
let conn: Connection;
const started: Array<{ name: string; command: Record<string, unknown> }> = [];
beforeAll(async () => {
  const server = new URL(db().uri);
  proxy = await startTcpProxy({ port: Number(server.port), host: server.hostname });
  const uri = uriWithDb(`mongodb://127.0.0.1:${proxy.port}/`, db().dbName);
  conn = await mongoose.createConnection(`${uri}${uri.includes('?') ? '&' : '?'}directConnection=true`, { monitorCommands: true }).asPromise();
  const client = conn.getClient();
  client.on('commandStarted', (e) => {
    started.push({ name: e.commandName, command: e.command as Record<string, unknown> });
    const lsid = (e.command as { lsid?: { id?: { toString(f: string): string } } }).lsid?.id?.toString('hex');
    if (!lsid) return;
    byRequest.set(e.requestId, lsid);
    const n = (inFlight.get(lsid) ?? 0) + 1;
    inFlight.set(lsid, n);
    maxInFlight = Math.max(maxInFlight, n);
  });
  const settled = (e: { requestId: number }) => {
    const lsid = byRequest.get(e.requestId);
    if (lsid) inFlight.set(lsid, inFlight.get(lsid)! - 1);
  };
  client.on('commandSucceeded', settled);
  client.on('commandFailed', settled);
});
const byRequest = new Map<number, string>();
const inFlight = new Map<string, number>();
let maxInFlight = 0;
afterAll(async () => {
  await conn?.close();
  await proxy?.close();
});

const task = (name: string) => ({ name, dependsOn: [], handler: name, input: null, options: DEFAULT_TASK_OPTIONS, dynamic: false, addedBy: null });
const { Timestamp } = mongoose.mongo;

describe('causal session', () => {
  it('reads after a write carry the write\'s operation time as afterClusterTime, and the same lsid is never in flight twice', async () => {
    const store = await MongoStore.create(conn, { causalConsistency: 'always' });
    await store.createContainer({ name: 'causal', failFast: false, definition: null });
    await store.addTasks('causal', [task('a'), task('b')]);
    const opTime = new Timestamp({ t: 4_000_000_000, i: 7 });
    proxy.rewriteReplies((command) => (command.insert === 'pts_transitions' ? (reply) => ({ ...reply, operationTime: opTime }) : undefined));
    try {
      const claims = await Promise.all(['a', 'b'].map((t) => store.claimTask({ container: 'causal', task: t, expectedToken: 0, claim: { runnerId: 'me', attempt: 1, leaseMs: 60_000, checkpoint: null } })));
      expect(claims.map((c) => c?.token)).toEqual([1, 1]);
      started.length = 0;
      maxInFlight = 0;
      await Promise.all([store.readLog('causal', 'a', 0), store.readLog('causal', 'b', 0), store.loadSnapshot('causal'), store.loadSnapshot('causal')]);
    } finally {
      proxy.rewriteReplies(null);
    }
    const reads = started.filter((c) => c.name === 'find' || c.name === 'aggregate');
    expect(reads.length).toBeGreaterThan(0);
    for (const r of reads) {
      const rc = r.command.readConcern as { level?: string; afterClusterTime?: InstanceType<typeof Timestamp> } | undefined;
      expect(rc?.level).toBe('majority');
      expect(rc?.afterClusterTime?.equals(opTime)).toBe(true);
    }
    expect(maxInFlight).toBe(1); // concurrent operations, each in its own driver session
  });

  it('a run with the causal session on succeeds on the test server (sessions accepted, no operation times)', async () => {
    const store = await MongoStore.create(conn, { causalConsistency: 'always' });
    const runs: string[] = [];
    const def = defineContainer('causal-run')
      .task('a', async (ctx) => runs.push(`a#${ctx.attempt}`))
      .task('b', { dependsOn: ['a'] }, async (ctx) => runs.push(`b#${ctx.attempt}`));
    started.length = 0;
    expect((await (await Runner.create({ store, container: def, pollMs: 30 })).run()).status).toBe('succeeded');
    expect(runs).toEqual(['a#1', 'b#1']);
    expect(stateOf(await snapshotOf(db().connection, 'causal-run'), 'b').status).toBe('succeeded');
    expect(started.some((c) => c.command.lsid !== undefined)).toBe(true);
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
