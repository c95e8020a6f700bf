import { describe, expect, it } from 'vitest';
import { defineContainer, getContainerStatus, Runner } from '../src/index.js';
import { databasePerFile } from './support/database.js';
import { sleep, snapshotOf } from './support/engine.js';

const db = databasePerFile();

/** Records when each task starts and ends, and the highest overlap seen. */
function tracker() {
  const spans = new Map<string, { start: number; end: number }>();
  let running = 0;
  let maxRunning = 0;
  const byGroup = new Map<string, { running: number; max: number }>();
  const track =
    (name: string, ms: number, group?: string) =>
    async (): Promise<string> => {
      const start = performance.now();
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      const g = group ? (byGroup.get(group) ?? { running: 0, max: 0 }) : null;
      if (g && group) {
        g.running += 1;
        g.max = Math.max(g.max, g.running);
        byGroup.set(group, g);
      }
      await sleep(ms);
      running -= 1;
      if (g) g.running -= 1;
      spans.set(name, { start, end: performance.now() });
      return `${name}-done`;
    };
  return { spans, track, maxRunning: () => maxRunning, groupMax: (g: string) => byGroup.get(g)?.max ?? 0 };
}

describe('runner: order and parallelism', () => {
  it('never starts a task before its dependencies succeeded', async () => {
    const t = tracker();
    // fetch -> (a1 -> a2) and (b1) -> join
    const container = defineContainer('order')
      .task('fetch', t.track('fetch', 80))
      .task('a1', { dependsOn: ['fetch'] }, t.track('a1', 120))
      .task('a2', { dependsOn: ['a1'] }, t.track('a2', 40))
      .task('b1', { dependsOn: ['fetch'] }, t.track('b1', 60))
      .task('join', { dependsOn: ['a2', 'b1'] }, async (ctx) => {
        await t.track('join', 10)();
        return [ctx.deps.a2, ctx.deps.b1];
      });
    const runner = await Runner.create({ connection: db().connection, container, concurrency: 4, pollMs: 100 });
    const result = await runner.run();
    expect(result.status).toBe('succeeded');

    const deps: Record<string, string[]> = { a1: ['fetch'], a2: ['a1'], b1: ['fetch'], join: ['a2', 'b1'] };
    for (const [task, before] of Object.entries(deps)) {
      for (const dep of before) expect(t.spans.get(task)!.start).toBeGreaterThanOrEqual(t.spans.get(dep)!.end);
    }
    // a1 and b1 are independent: they overlapped.
    expect(t.spans.get('b1')!.start).toBeLessThan(t.spans.get('a1')!.end);

    const status = await getContainerStatus('order', { connection: db().connection });
    expect(status.status).toBe('succeeded');
    expect(status.percentComplete).toBe(100);
    expect(status.counts.succeeded).toBe(5);
  });

  it('runs independent tasks in parallel up to the global limit, and per-group limits hold', async () => {
    const t = tracker();
    let c = defineContainer('parallel') as ReturnType<typeof defineContainer>;
    for (let i = 0; i < 8; i++) c = c.task(`free-${i}`, t.track(`free-${i}`, 150)) as typeof c;
    for (let i = 0; i < 4; i++) c = c.task(`io-${i}`, { group: 'io' }, t.track(`io-${i}`, 100, 'io')) as typeof c;
    const runner = await Runner.create({
      connection: db().connection,
      container: c,
      concurrency: 3,
      groups: { io: 1 },
      pollMs: 50,
    });
    // Claims are leases: the database must never show more running tasks
    // than may really run, or a queued claim could expire without heartbeats.
    let maxClaimed = 0;
    let maxClaimedIo = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const snap = await snapshotOf(db().connection, 'parallel').catch(() => null);
        const running = snap?.tasks.filter((x) => x.state.status === 'running') ?? [];
        maxClaimed = Math.max(maxClaimed, running.length);
        maxClaimedIo = Math.max(maxClaimedIo, running.filter((x) => x.record.options.group === 'io').length);
        await sleep(20);
      }
    })();
    expect((await runner.run()).status).toBe('succeeded');
    sampling = false;
    await sampler;
    expect(t.maxRunning()).toBe(3);
    expect(t.groupMax('io')).toBe(1);
    expect(maxClaimed).toBeGreaterThan(0);
    expect(maxClaimed).toBeLessThanOrEqual(3);
    expect(maxClaimedIo).toBeLessThanOrEqual(1);
  });
});
