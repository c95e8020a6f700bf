import { describe, expect, it } from 'vitest';
import {
  defineContainer,
  getContainerStatus,
  NonRetryableError,
  Runner,
  type TaskContext,
} from '../src/index.js';
import { compatClientPerFile, uniqueName } from './support/compat.js';
import { sleep } from './support/engine.js';

const { db, api } = compatClientPerFile();

const fast = { pollMs: 50, checkpointIntervalMs: 0 } as const;

describe('compat API and the engine share containers', () => {
  it('a container made through the 0.0.1 API runs to completion on the engine, then reads as complete', async () => {
    const c = await api().getOrCreateTaskContainer(uniqueName('legacy-run'));
    await c.addTask('download', { taskData: { pages: 3 } });
    await c.addTask('parse', { dependsOn: ['download'], taskData: 'csv' });
    await c.addTask('index-a', { dependsOn: ['parse'], handler: 'index' });
    await c.addTask('index-b', { dependsOn: ['parse'], handler: 'index' });
    await c.addTask('flaky', { maxRetries: 1, delayBetweenRetriesInSeconds: 0 });
    expect(c.isComplete()).toBe(false);

    const seen: Record<string, unknown> = {};
    let flakyCalls = 0;
    const runner = await Runner.create({
      connection: db().connection,
      container: c.name,
      ...fast,
      handlers: {
        download: async (ctx: TaskContext) => {
          seen.download = ctx.input;
          for (let page = 1; page <= 3; page++) {
            await ctx.checkpoint({ page });
            await ctx.progress(page / 4, `page ${page}`);
          }
          return 'raw';
        },
        parse: async (ctx: TaskContext) => {
          seen.parse = [ctx.input, ctx.deps.download];
          return 'rows';
        },
        index: async (ctx: TaskContext) => ctx.task,
        flaky: async () => {
          flakyCalls += 1;
          if (flakyCalls === 1) throw new Error('first attempt fails');
          return 'ok';
        },
      },
    });
    const result = await runner.run();
    expect(result.status).toBe('succeeded');
    expect(seen).toEqual({ download: { pages: 3 }, parse: ['csv', 'raw'] });

    // The cached state is from before the run; isComplete(cb) reads again.
    expect(c.isComplete()).toBe(false);
    const complete = await new Promise((resolve, reject) => c.isComplete((err, v) => (err ? reject(err) : resolve(v))));
    expect(complete).toBe(true);
    expect(c.isComplete()).toBe(true);

    const tasks = await c.getTasks();
    expect(tasks.map((t) => t.name())).toEqual(['download', 'parse', 'index-a', 'index-b', 'flaky']);
    for (const t of tasks) {
      expect(t.isComplete()).toBe(true);
      expect(t.hasFailed()).toBe(false);
      expect(t.percentageComplete()).toBe(100);
      expect(t.leasedTill()).toBeNull();
      expect(t.lastInvokedAt()).toBeInstanceOf(Date);
      expect(t.taskEndedAt()!.getTime()).toBeGreaterThanOrEqual(t.lastInvokedAt()!.getTime());
      expect(t.taskDurationInMilliseconds()).toBe(t.taskEndedAt()!.getTime() - t.lastInvokedAt()!.getTime());
    }
    const download = tasks[0]!;
    expect(download.processingData()).toEqual({ page: 3 });
    expect(download.statusText()).toBe('page 3');
    expect(download.invokeCount()).toBe(1);
    expect(tasks[2]!.output()).toBe('index-a');
    expect(tasks[4]!.invokeCount()).toBe(2);
    await expect(c.getNextTask()).resolves.toBeNull();
  });

  it('tasks driven by hand through getNextTask/updateTask and by the engine mix in one container', async () => {
    const c = await api().getOrCreateTaskContainer(uniqueName('mixed'));
    await c.addTask('manual', null);
    await c.addTask('auto', { dependsOn: ['manual'] });
    const handed = await c.getNextTask();
    expect(handed?.name()).toBe('manual');
    await c.updateTask('manual', { percentageComplete: 50, processingData: { half: true } });
    await c.updateTask('manual', { isComplete: true, statusText: 'done by hand' });

    const runner = await Runner.create({
      connection: db().connection,
      container: c.name,
      ...fast,
      handlers: { auto: async (ctx: TaskContext) => ({ after: ctx.deps.manual ?? null }) },
    });
    expect((await runner.run()).status).toBe('succeeded');
    const auto = (await c.getTask('auto'))!;
    expect(auto.isComplete()).toBe(true);
    expect(auto.output()).toEqual({ after: null });
    expect((await c.getTask('manual'))!.statusText()).toBe('done by hand');
    expect((await getContainerStatus(c.name, { connection: db().connection })).status).toBe('succeeded');
  });

  it('a container declared and run by the engine reads through the compat API, failures included', async () => {
    const name = uniqueName('engine');
    const container = defineContainer(name, { failFast: false })
      .task('extract', { input: { source: 's3' }, retries: 2 }, async (ctx) => {
        await ctx.progress(0.5, 'half');
        return 1;
      })
      .task('broken', { retries: 0 }, async () => {
        throw new NonRetryableError('bad input');
      })
      .task('after-broken', { dependsOn: ['broken'] }, async () => 'never')
      .task('load', { dependsOn: ['extract'] }, async () => 2);
    const runner = await Runner.create({ connection: db().connection, container, ...fast });
    expect((await runner.run()).status).toBe('failed');

    const c = await api().getTaskContainer(name);
    expect(c).not.toBeNull();
    expect(c!.isComplete()).toBe(false);
    const byName = Object.fromEntries((await c!.getTasks()).map((t) => [t.name(), t]));
    expect(Object.keys(byName)).toEqual(['extract', 'broken', 'after-broken', 'load']);
    expect(byName.extract!.isComplete()).toBe(true);
    expect(byName.extract!.taskData()).toEqual({ source: 's3' });
    expect(byName.extract!.maxRetries()).toBe(2);
    expect(byName.extract!.delayBetweenRetriesInSeconds()).toBe(1); // engine default backoff: 1 s initial
    expect(byName.broken!.hasFailed()).toBe(true);
    expect(byName.broken!.isComplete()).toBe(true); // 0.0.1: hasFailed only together with isComplete
    expect(byName.broken!.invokeCount()).toBe(1);
    expect(byName['after-broken']!.status()).toBe('skipped');
    expect(byName['after-broken']!.isComplete()).toBe(false);
    expect(byName['after-broken']!.hasFailed()).toBe(false);
    expect(byName.load!.isComplete()).toBe(true);
    await expect(c!.getNextTask()).resolves.toBeNull();

    // Fixing the failure by hand through the 0.0.1 API: the skipped task stays
    // skipped (the container stays finished) until it is marked not complete.
    await c!.updateTask('broken', { isComplete: true });
    expect((await getContainerStatus(name, { connection: db().connection })).status).toBe('failed');
    const revived = await c!.updateTask('after-broken', { isComplete: false });
    expect(revived.status()).toBe('pending');
    expect((await getContainerStatus(name, { connection: db().connection })).status).toBe('running');
    expect((await c!.getNextTask())?.name()).toBe('after-broken');
    await c!.updateTask('after-broken', { isComplete: true });
    expect(c!.isComplete()).toBe(true);
    expect((await getContainerStatus(name, { connection: db().connection })).status).toBe('succeeded');
  });

  it('a task running on the engine shows as leased through the compat API', async () => {
    const c = await api().getOrCreateTaskContainer(uniqueName('live'));
    await c.addTask('slow', null);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const runner = await Runner.create({
      connection: db().connection,
      container: c.name,
      ...fast,
      leaseMs: 10_000,
      handlers: {
        slow: async (ctx: TaskContext) => {
          await ctx.progress(0.25, 'a quarter');
          await gate;
        },
      },
    });
    const run = runner.run();
    let live = (await c.getTask('slow'))!;
    for (let i = 0; i < 100 && live.statusText() !== 'a quarter'; i++) {
      await sleep(20);
      live = (await c.getTask('slow'))!;
    }
    expect(live.status()).toBe('running');
    expect(live.percentageComplete()).toBe(25);
    expect(live.leasedTill()!.getTime()).toBeGreaterThan(Date.now());
    // Leased by the engine: not handed out by getNextTask.
    await expect(c.getNextTask()).resolves.toBeNull();
    release();
    expect((await run).status).toBe('succeeded');
    expect((await c.getTask('slow'))!.isComplete()).toBe(true);
  });
});
