/**
 * writeConcernError injected by the TCP proxy: runner A talks to the server
 * through tools/tcp-proxy.ts, which adds a `writeConcernError` to every
 * third reply of an insert into the task log (the insert itself landed, as
 * on a replica set whose write concern timed out). Runner B is connected
 * directly. Entries of such replies must be retried and never counted
 * durable on that reply; every task still runs once at a time, and a
 * success is never re-run or stored as a failure.
 */
import { afterAll, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../../tools/tcp-proxy.js';
import { databasePerFile, uriWithDb } from '../support/database.js';
import { killChildrenAfterEach } from '../support/child.js';
import { killAll, readContainer, report, scenario, settle, spawnRunner } from './support/scenario.js';

const db = databasePerFile();
killChildrenAfterEach();
let proxy: TcpProxy | undefined;
afterAll(() => proxy?.close());

it('write-concern-error: a third of the log inserts of runner A get a writeConcernError', async () => {
  const shape = 'flat:30';
  const server = new URL(db().uri);
  proxy = await startTcpProxy({ port: Number(server.port), host: server.hostname });
  let inserts = 0;
  let injected = 0;
  proxy.rewriteReplies((command) => {
    if (command.insert !== 'pts_transitions' || ++inserts % 3 !== 0) return undefined;
    injected++;
    return (reply) => ({
      ...reply,
      writeConcernError: { code: 64, codeName: 'WriteConcernFailed', errmsg: 'waiting for replication timed out (injected)', errInfo: { wtimeout: true } },
    });
  });
  const viaProxy = uriWithDb(`mongodb://127.0.0.1:${proxy.port}/`, db().dbName);
  const s = scenario('write-concern-error', {
    MONGODB_URI: db().uriWithDb, CONTAINER: 'wce', SHAPE: shape, INC: '1',
    LEASE_MS: '2000', HEARTBEAT_MS: '500', STEPS: '3', STEP_MS: '40', CONCURRENCY: '4',
  });
  try {
    const a = spawnRunner(s, 'A', { MONGODB_URI: `${viaProxy}${viaProxy.includes('?') ? '&' : '?'}directConnection=true` });
    await a.waitForLine(/^started /, 60_000);
    const b = spawnRunner(s, 'B');
    const [aEnd, bEnd] = await Promise.all([settle(s, a, 120_000), settle(s, b, 120_000)]);
    const counts = report(s, await readContainer(db().uriWithDb, 'wce'), {
      shape,
      extra: { A: JSON.stringify(aEnd), B: JSON.stringify(bEnd), inserts, injected },
    });
    expect(injected).toBeGreaterThan(3); // the fault really happened
    expect(counts.status).toBe('succeeded');
  } finally {
    proxy.rewriteReplies(null);
    await killAll(s);
  }
});
