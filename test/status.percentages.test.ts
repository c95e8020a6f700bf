/**
 * What the status report says about tasks that did not succeed: failed and
 * cancelled tasks keep their last progress, skipped ones show 0, only a
 * succeeded task (or container) shows 100; a finished task's status text is
 * not shown as current; a retried attempt starts at its checkpoint's progress.
 */
import { describe, expect, it } from 'vitest';
import { cancelContainer, defineContainer, getContainerStatus, MongoStore, NonRetryableError, Runner } from '../src/index.js';
import { renderStatus } from '../src/cli/render/text.js';
import { databasePerFile } from './support/database.js';
import { sleep } from './support/engine.js';

const db = databasePerFile();
const fast = { pollMs: 50, checkpointIntervalMs: 0 } as const;
const status = (name: string) => getContainerStatus(name, { connection: db().connection });

describe('per-task percentages', () => {
  it('failed keeps its last progress, skipped shows 0, the failed container is not 100 %', async () => {
    const container = defineContainer('failing', { failFast: false })
      .task('ok', async (ctx) => {
        await ctx.progress(0.5, 'half');
        await ctx.progress(1, 'all of it');
      })
      .task('broken', { retries: 0 }, async (ctx) => {
        await ctx.progress(0.4, 'parsing row 40');
        throw new NonRetryableError('bad row 41');
      })
      .task('after-broken', { dependsOn: ['broken'] }, async () => 'never');
    expect((await (await Runner.create({ connection: db().connection, container, ...fast })).run()).status).toBe('failed');

    const r = await status('failing');
    const byName = Object.fromEntries(r.tasks.map((t) => [t.name, t]));
    expect(byName.ok).toMatchObject({ status: 'succeeded', percentComplete: 100, statusText: '', lastStatusText: 'all of it' });
    expect(byName.broken).toMatchObject({ status: 'failed', percentComplete: 40, statusText: '', lastStatusText: 'parsing row 40' });
    expect(byName['after-broken']).toMatchObject({ status: 'skipped', percentComplete: 0 });
    // (1 + 0.4 + 0) / 3
    expect(r.percentComplete).toBe(46.7);
    expect(r.etaMs).toBe(0);

    const text = renderStatus(r).join('\n');
    expect(text).toMatch(/^Progress: {2}46\.7%$/m);
    expect(text).toMatch(/^broken\s+failed\s+1\s+40%\s+\S+ \S+Z\s+\S+$/m);
    expect(text).toContain('    last status text: parsing row 40');
    expect(text).not.toMatch(/^ok\s.*all of it$/m);
  });

  it('a task that reported 100 % and then failed shows less than 100 %', async () => {
    const container = defineContainer('almost').task('last-step-fails', { retries: 0 }, async (ctx) => {
      await ctx.progress(1, 'done, now committing');
      throw new NonRetryableError('commit refused');
    });
    expect((await (await Runner.create({ connection: db().connection, container, ...fast })).run()).status).toBe('failed');
    const r = await status('almost');
    expect(r.tasks[0]).toMatchObject({ status: 'failed', percentComplete: 99.9 });
    expect(r.percentComplete).toBe(99.9);
  });

  it('a cancelled task keeps its last progress', async () => {
    let reached!: () => void;
    const atThird = new Promise<void>((r) => (reached = r));
    const container = defineContainer('to-cancel').task('slow', async (ctx) => {
      await ctx.progress(0.3, 'a third');
      reached();
      await sleep(60_000, ctx.signal);
    });
    const run = (await Runner.create({ connection: db().connection, container, ...fast })).run();
    await atThird;
    await cancelContainer(await MongoStore.create(db().connection), 'to-cancel');
    expect((await run).status).toBe('cancelled');
    const r = await status('to-cancel');
    expect(r.tasks[0]).toMatchObject({ status: 'cancelled', percentComplete: 30, statusText: '' });
    expect(r.percentComplete).toBe(30);
  });

  it('a retried attempt starts at the progress of its checkpoint, not 0 % and not past it', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let resumed!: () => void;
    const inSecond = new Promise<void>((r) => (resumed = r));
    const container = defineContainer('retried').task('download', { retries: 1, backoff: { initialMs: 10, jitter: 0 } }, async (ctx) => {
      if (ctx.attempt === 1) {
        await ctx.progress(0.5, '5/10 MB');
        await ctx.checkpoint({ mb: 5 });
        await ctx.progress(0.7, '7/10 MB'); // not checkpointed: redone by the next attempt
        throw new Error('connection reset');
      }
      expect(ctx.lastCheckpoint).toEqual({ mb: 5 });
      resumed();
      await gate;
      await ctx.progress(1, '10/10 MB');
    });
    const run = (await Runner.create({ connection: db().connection, container, ...fast })).run();
    await inSecond;
    const mid = await status('retried');
    expect(mid.tasks[0]).toMatchObject({ status: 'running', attempt: 2, percentComplete: 50, statusText: '' });
    expect(mid.percentComplete).toBe(50);
    open();
    expect((await run).status).toBe('succeeded');
    expect((await status('retried')).percentComplete).toBe(100);
  });
});
