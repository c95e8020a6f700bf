import { describe, expect, it } from 'vitest';
import { DefinitionConflictError, defineContainer, MongoStore, retryTasks, Runner, type RunnerEventMap } from '../src/index.js';
import { databasePerFile } from './support/database.js';
import { stateOf } from './support/engine.js';

const db = databasePerFile();
const fast = { pollMs: 50, checkpointIntervalMs: 0 } as const;

describe('definition changes between runs', () => {
  it('changed retries, input and failFast apply to tasks that are not running, and are announced', async () => {
    const store = await MongoStore.create(db().connection);
    const seen: unknown[] = [];
    const define = (retries: number, input: string, failFast: boolean) =>
      defineContainer('changed', { failFast }).task('b', { retries, backoff: { initialMs: 10, jitter: 0 }, input }, async (ctx) => {
        seen.push(ctx.input);
        if (ctx.attempt < 3) throw new Error(`attempt ${ctx.attempt} fails`);
        return ctx.input;
      });
    expect((await (await Runner.create({ store, container: define(0, 'old', false), ...fast })).run()).status).toBe('failed');
    await retryTasks(store, 'changed', 'b');

    const runner = await Runner.create({ store, container: define(1, 'new', true), ...fast });
    const announced: Array<RunnerEventMap['container:definition-changed']> = [];
    runner.on('container:definition-changed', (e) => announced.push(e));
    expect((await runner.run()).status).toBe('succeeded');
    expect(seen).toEqual(['old', 'new', 'new']);
    expect(announced).toHaveLength(1);
    expect(announced[0]!.changes.join('\n')).toMatch(/task "b": options .*"retries":0.* -> .*"retries":1/);
    expect(announced[0]!.changes).toContain('failFast false -> true');
    const snap = (await store.loadSnapshot('changed'))!;
    expect(snap.container.failFast).toBe(true);
    expect(stateOf(snap, 'b').output).toBe('new');
  });

  it('a change to a running task raises DefinitionConflictError', async () => {
    const store = await MongoStore.create(db().connection);
    const define = (timeoutMs: number) => defineContainer('changed-running').task('t', { timeoutMs }, async () => 't');
    await Runner.create({ store, container: define(1_000), ...fast });
    await store.claimTask({ container: 'changed-running', task: 't', expectedToken: 0, claim: { runnerId: 'elsewhere', attempt: 1, leaseMs: 60_000, checkpoint: null } });
    const error = await Runner.create({ store, container: define(2_000), ...fast }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DefinitionConflictError);
    expect((error as DefinitionConflictError).differences[0]).toMatch(/task "t": options .* \(it is running/);
  });
});
