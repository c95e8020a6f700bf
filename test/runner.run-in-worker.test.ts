/**
 * runInWorker: a handler exported by a module runs in a worker thread;
 * progress and checkpoints reach the attempt, errors and timeouts behave as
 * for any handler, and an aborted attempt ends its thread even in the middle
 * of synchronous work (nothing is written outside after that).
 */
import path from 'node:path';
import { expect, it } from 'vitest';
import { defineContainer, InvalidOptionError, Runner, runInWorker } from '../src/index.js';
import { makeTempDir, sideEffectLog } from './support/child.js';
import { uniqueName } from './support/compat.js';
import { databasePerFile } from './support/database.js';
import { sleep, snapshotOf, stateOf } from './support/engine.js';

const db = databasePerFile();
const fast = { pollMs: 30, checkpointIntervalMs: 0 } as const;
const fixture = (file: string) => new URL(`./fixtures/${file}`, import.meta.url);

it('progress, checkpoints, deps and input cross the thread; an error thrown there is retried and recorded', async () => {
  const name = uniqueName('worker');
  const def = defineContainer(name, { failFast: false })
    .task('first', async () => ({ n: 1, at: new Date('2026-01-01T00:00:00Z') }))
    .task('fails', { retries: 1, backoff: { initialMs: 0 } }, runInWorker(fixture('checkpointing-worker.mjs'), { exportName: 'fails' }))
    .task('resume', { dependsOn: ['first'], input: { k: 'v' } }, runInWorker(fixture('checkpointing-worker.mjs'), { exportName: 'resume' }));
  const runner = await Runner.create({ connection: db().connection, container: def, ...fast });
  const progress: string[] = [];
  runner.on('task:progress', (e) => progress.push(`${e.task} ${e.fraction} ${e.statusText}`));
  expect((await runner.run()).status).toBe('failed');
  const end = await snapshotOf(db().connection, name);
  expect(stateOf(end, 'resume')).toMatchObject({
    status: 'succeeded',
    checkpoint: { step: 1 },
    output: { from: 0, deps: { first: { n: 1, at: new Date('2026-01-01T00:00:00Z') } }, input: { k: 'v' }, attempt: 1 },
  });
  expect(progress).toContain('resume 0.5 half');
  const fails = stateOf(end, 'fails');
  expect(fails).toMatchObject({ status: 'failed', failures: 2 });
  expect(fails.lastError?.message).toBe('worker failed on attempt 2');
}, 60_000);

it('a timeout ends the worker thread in the middle of synchronous work: nothing is written outside after it', async () => {
  const name = uniqueName('worker-timeout');
  const log = sideEffectLog<{ event: string }>(path.join(makeTempDir(), 'effects.jsonl'));
  const def = defineContainer(name).task(
    'compute',
    { retries: 0, timeoutMs: 1_500, input: { ms: 6_000, log: log.path, runner: 'in-process' } },
    runInWorker(fixture('blocking-worker.mjs')),
  );
  const runner = await Runner.create({ connection: db().connection, container: def, ...fast });
  expect((await runner.run()).status).toBe('failed');
  await sleep(6_000); // the work would have ended by now, had its thread lived
  expect(log.read().map((e) => e.event)).not.toContain('external-write');
  expect(stateOf(await snapshotOf(db().connection, name), 'compute').lastError?.code).toBe('PTS_TIMEOUT');
}, 60_000);

it('refuses a bad module or option when the handler is made', () => {
  expect(() => runInWorker(new URL('https://example.com/x.js'))).toThrow(InvalidOptionError);
  expect(() => runInWorker('')).toThrow(InvalidOptionError);
  expect(() => runInWorker(fixture('blocking-worker.mjs'), { maxThreads: 0 })).toThrow(/maxThreads/);
  expect(() => runInWorker(fixture('blocking-worker.mjs'), { exportName: '' })).toThrow(/exportName/);
});
