import { describe, expect, it } from 'vitest';
import { Runner, type RunnerEventMap } from '../src/index.js';
import { compatClientPerFile, uniqueName } from './support/compat.js';
import { sleep } from './support/engine.js';

const { db, api } = compatClientPerFile();

describe('0.0.1 edits of a running task', () => {
  it('progress and status text are written in place: the engine attempt keeps its claim', async () => {
    const name = uniqueName('edit-running');
    const c = await api().getOrCreateTaskContainer(name);
    await c.addTask('work', { handler: 'work' });
    let calls = 0;
    const runner = await Runner.create({
      connection: db().connection,
      container: name,
      pollMs: 50,
      leaseMs: 1_500,
      heartbeatMs: 200,
      handlers: {
        work: async () => {
          calls += 1;
          await sleep(1_200);
          return 'done';
        },
      },
    });
    const lost: Array<RunnerEventMap['task:lease-lost']> = [];
    runner.on('task:lease-lost', (e) => lost.push(e));
    const run = runner.run();
    for (let i = 0; i < 50 && (await c.getTask('work'))!.status() !== 'running'; i++) await sleep(20);
    const edited = await c.updateTask('work', { statusText: 'halfway', percentageComplete: 50 });
    expect(edited.statusText()).toBe('halfway');
    expect(edited.percentageComplete()).toBe(50);
    expect(edited.status()).toBe('running');
    expect((await run).status).toBe('succeeded');
    // The claim held: no lease lost, one handler call, one invocation (a wall-clock bound here failed at load 25).
    expect(lost).toEqual([]);
    expect(calls).toBe(1);
    const after = (await c.getTask('work'))!;
    expect(after.invokeCount()).toBe(1);
    expect(after.output()).toBe('done');
  });
});
