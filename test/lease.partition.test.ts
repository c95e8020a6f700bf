/**
 * A runner cut off from the database (a real TCP blackhole between it and the
 * server: its writes get no reply) stops its task by itself before another
 * runner takes it over, instead of running it alongside the rescuer; its
 * engine operations time out instead of blocking for the driver's 30 s.
 */
import mongoose from 'mongoose';
import { afterAll, expect, it } from 'vitest';
import { defineContainer, LeaseLostError, Runner } from '../src/index.js';
import { databasePerFile } from './support/database.js';
import { sleep, snapshotOf, stateOf } from './support/engine.js';
import { startTcpProxy, type TcpProxy } from '../tools/tcp-proxy.js';

const db = databasePerFile();
let proxy: TcpProxy | undefined;
afterAll(() => proxy?.close());

it('a partitioned runner fences itself off before the other runner takes its task over', { timeout: 60_000 }, async () => {
  const upstream = new URL(db().uri);
  proxy = await startTcpProxy({ host: upstream.hostname, port: Number(upstream.port) });
  const cutOff = await mongoose
    .createConnection(`mongodb://127.0.0.1:${proxy.port}/`, { dbName: db().dbName, directConnection: true, serverSelectionTimeoutMS: 2_000 })
    .asPromise();
  const intervals: Array<{ runner: string; from: number; to: number; reason?: unknown }> = [];
  let started!: () => void;
  const startedOnA = new Promise<void>((r) => (started = r));
  const container = (runner: string) =>
    defineContainer('partition').task('long', async (ctx) => {
      const from = performance.now();
      if (runner === 'A') started();
      try {
        await sleep(runner === 'A' ? 20_000 : 300, ctx.signal);
      } catch (reason) {
        intervals.push({ runner, from, to: performance.now(), reason });
        throw reason;
      }
      intervals.push({ runner, from, to: performance.now() });
      return `from-${runner}`;
    });
  const options = { leaseMs: 2_000, pollMs: 100, checkpointIntervalMs: 0, operationTimeoutMs: 500 };
  const a = await Runner.create({ connection: cutOff, container: container('A'), runnerId: 'A', ...options });
  a.on('runner:error', () => undefined); // its reads and writes time out while it is cut off
  let leaseLostAt = -1;
  a.on('task:lease-lost', () => (leaseLostAt = performance.now()));
  const runA = a.run();
  await startedOnA;
  proxy.blackhole();
  const cutAt = performance.now();

  const b = await Runner.create({ connection: db().connection, container: container('B'), runnerId: 'B', ...options });
  expect((await b.run()).status).toBe('succeeded');
  proxy.heal();
  await a.stop();
  await runA.catch(() => undefined);
  await cutOff.close();

  const onA = intervals.find((i) => i.runner === 'A')!;
  const onB = intervals.find((i) => i.runner === 'B')!;
  expect(onA.reason).toBeInstanceOf(LeaseLostError);
  // A stopped within its lease of the cut, and before B started: never both at once.
  expect(onA.to - cutAt).toBeLessThan(2_000);
  expect(onA.to).toBeLessThan(onB.from);
  expect(leaseLostAt - cutAt).toBeLessThan(2_000);
  const state = stateOf(await snapshotOf(db().connection, 'partition'), 'long');
  expect(state).toMatchObject({ status: 'succeeded', output: 'from-B', failures: 0, errors: [] });
});
