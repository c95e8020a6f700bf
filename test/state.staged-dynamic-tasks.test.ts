import { describe, expect, it } from 'vitest';
import { defineContainer, MongoStore, Runner } from '../src/index.js';
import { resolveTaskOptions } from '../src/definition/options.js';
import { databasePerFile } from './support/database.js';
import { sleep } from './support/engine.js';

const db = databasePerFile();
const fast = { pollMs: 50, checkpointIntervalMs: 0 } as const;

describe('tasks added at run time are staged under the attempt that adds them', () => {
  it('tasks added by an attempt that then fails never exist and never run', async () => {
    const ran: string[] = [];
    const store = await MongoStore.create(db().connection);
    const container = defineContainer('staged-fail')
      .handler('child', async (ctx) => void ran.push(ctx.task))
      .task('discover', { retries: 0 }, async (ctx) => {
        await ctx.addTasks([{ name: 'child-1', handler: 'child' }]);
        await sleep(300); // a runner reading now must not see child-1
        throw new Error('discover fails after adding');
      });
    const runner = await Runner.create({ store, container, ...fast });
    const run = runner.run();
    await sleep(150);
    const mid = (await store.loadSnapshot('staged-fail'))!;
    expect(mid.tasks.map((t) => t.record.name)).toEqual(['discover']);
    expect((await run).status).toBe('failed');
    await sleep(200);
    expect(ran).toEqual([]);
    expect((await store.loadSnapshot('staged-fail'))!.tasks.map((t) => t.record.name)).toEqual(['discover']);
  });

  it('tasks added by a fenced-off attempt never run; those of the attempt that succeeds do', async () => {
    const ran: string[] = [];
    const store = await MongoStore.create(db().connection);
    const container = defineContainer('staged-fenced')
      .handler('child', async (ctx) => void ran.push(ctx.task))
      .task('discover', async (ctx) => {
        await ctx.addTasks([{ name: 'fresh', handler: 'child' }]);
        return 'ok';
      });
    await Runner.create({ store, container, ...fast });
    // An attempt of a runner that froze: it claimed "discover" and staged a task, then lost its lease.
    const claim = (await store.claimTask({ container: 'staged-fenced', task: 'discover', expectedToken: 0, claim: { runnerId: 'frozen', attempt: 1, leaseMs: 100, checkpoint: null } }))!;
    await store.addTasks('staged-fenced', [
      { name: 'ghost', dependsOn: [], handler: 'child', input: null, options: resolveTaskOptions('ghost'), dynamic: true, addedBy: 'discover', stagedBy: claim.token },
    ]);
    await sleep(150);
    expect((await (await Runner.create({ store, container, ...fast })).run()).status).toBe('succeeded');
    // The frozen attempt's success arrives too late: fenced out.
    await expect(store.finishAttempt(claim, { kind: 'succeeded', output: null })).rejects.toThrow();
    expect(ran).toEqual(['fresh']);
    const names = (await store.loadSnapshot('staged-fenced'))!.tasks.map((t) => t.record.name).sort();
    expect(names).toEqual(['discover', 'fresh']);
  });
});
