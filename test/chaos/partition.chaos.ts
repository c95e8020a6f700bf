/**
 * A partitioned runner: runner A talks to the server through a TCP proxy
 * under the test's control. Mid-task the proxy is blackholed (bytes stop, no
 * connection closes) and runner B, connected directly, comes along. A must
 * stop executing before B takes the task over: never two executions at once.
 */
import { afterAll, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../../tools/tcp-proxy.js';
import { databasePerFile, uriWithDb } from '../support/database.js';
import { killChildrenAfterEach } from '../support/child.js';
import { killAll, readContainer, report, scenario, settle, sleep, spawnRunner } from './support/scenario.js';

const db = databasePerFile();
killChildrenAfterEach();
let proxy: TcpProxy | undefined;
afterAll(() => proxy?.close());

it('partition: a runner cut off by a blackholed link stops before another takes its task over', async () => {
  const shape = 'slow:4';
  const server = new URL(db().uri);
  proxy = await startTcpProxy({ port: Number(server.port), host: server.hostname });
  const viaProxy = uriWithDb(`mongodb://127.0.0.1:${proxy.port}/`, db().dbName);
  const s = scenario('partition', {
    MONGODB_URI: db().uriWithDb, CONTAINER: 'partition', SHAPE: shape, INC: '1',
    LEASE_MS: '1500', HEARTBEAT_MS: '375', SLOW_STEPS: '80', STEP_MS: '100', STEPS: '2',
  });
  try {
    const a = spawnRunner(s, 'A', { MONGODB_URI: `${viaProxy}${viaProxy.includes('?') ? '&' : '?'}directConnection=true` });
    await a.waitForLine(/^started slow /, 30_000);
    await sleep(300);
    proxy.blackhole();
    await sleep(300);
    const b = spawnRunner(s, 'B');
    const bEnd = await settle(s, b, 90_000);
    await sleep(1_000);
    proxy.heal();
    const aEnd = await settle(s, a, 20_000);
    report(s, await readContainer(db().uriWithDb, 'partition'), {
      shape,
      extra: { A: JSON.stringify(aEnd), B: JSON.stringify(bEnd), heldBytes: proxy.stats.heldBytes },
    });
  } finally {
    proxy.heal();
    await killAll(s);
  }
});
