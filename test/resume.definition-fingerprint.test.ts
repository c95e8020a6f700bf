/**
 * A runner's start trusts the definition for the task records only while
 * the container says that very definition was applied and nothing changed
 * its tasks since (the fingerprint recorded with the revision): then it
 * reads the log alone. Any change of a task record, a task added or
 * deleted, moves the revision on, and the next start reads and compares
 * everything again. Counted with the driver's command monitoring on a real server.
 */
import { describe, expect, it } from 'vitest';
import { DefinitionConflictError, defineContainer, MongoStore, Runner, type RunnerEventMap } from '../src/index.js';
import { commandCounting } from './support/command-count.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
const counting = commandCounting(db);
const count = counting.count;

/** More tasks than a read by `_id` takes (64): the container is read by filter. */
const TASKS = 100;
const fast = { pollMs: 50, checkpointIntervalMs: 0 } as const;

function flat(name: string, ran: string[], input = 'a', timeoutMs = 60_000) {
  let c = defineContainer(name, { failFast: false });
  for (let i = 0; i < TASKS; i++) {
    c = c.task(`t${i}`, { input, timeoutMs }, async (ctx) => {
      ran.push(ctx.task);
      return ctx.input;
    });
  }
  return c;
}

describe('resume with the definition applied', () => {
  it('a start with the definition applied unchanged reads the log alone, and runs every task once from the records it declares', async () => {
    const store = await MongoStore.create(counting.connection());
    const ran: string[] = [];
    await Runner.create({ store, container: flat('unchanged', ran) });
    const { result: runner, commands } = await count(() => Runner.create({ store, container: flat('unchanged', ran), ...fast }));
    expect(commands.get('find pts_tasks') ?? 0, JSON.stringify(Object.fromEntries(commands))).toBe(0);
    expect(commands.get('find pts_transitions') ?? 0).toBeGreaterThan(0);
    expect((await runner.run()).status).toBe('succeeded');
    expect(ran.sort()).toEqual(Array.from({ length: TASKS }, (_, i) => `t${i}`).sort());
    const snap = (await store.loadSnapshot('unchanged'))!;
    expect(snap.tasks.every((t) => t.state.status === 'succeeded' && t.state.output === 'a' && t.state.attempt === 1)).toBe(true);
  });

  it('a task record changed since the definition was applied makes the next start read and compare everything', async () => {
    const store = await MongoStore.create(counting.connection());
    const ran: string[] = [];
    await Runner.create({ store, container: flat('edited', ran) });
    // Changed behind the definition's back (as the 0.0.1 API's updateTask does).
    await store.updateTaskRecord('edited', 't7', { input: 'changed' });
    const { result: runner, commands } = await count(() => Runner.create({ store, container: flat('edited', ran), ...fast }));
    expect(commands.get('find pts_tasks') ?? 0).toBeGreaterThan(0);
    const announced: Array<RunnerEventMap['container:definition-changed']> = [];
    runner.on('container:definition-changed', (e) => announced.push(e));
    expect((await runner.run()).status).toBe('succeeded');
    // The definition's input was put back, not the edited one trusted or kept.
    expect(announced.flatMap((e) => e.changes)).toEqual(['task "t7": input']);
    const snap = (await store.loadSnapshot('edited'))!;
    expect(snap.tasks.find((t) => t.record.name === 't7')!.state.output).toBe('a');
    // The start after that compares again, finds the records equal and records
    // the definition applied: the one after it reads the log alone.
    const compared = await count(() => Runner.create({ store, container: flat('edited', ran), ...fast }));
    expect(compared.commands.get('find pts_tasks') ?? 0).toBeGreaterThan(0);
    const again = await count(() => Runner.create({ store, container: flat('edited', ran), ...fast }));
    expect(again.commands.get('find pts_tasks') ?? 0).toBe(0);
  });

  it('a changed definition is compared task by task: a change to a running task still raises DefinitionConflictError', async () => {
    const store = await MongoStore.create(counting.connection());
    await Runner.create({ store, container: flat('conflict', []) });
    await store.claimTask({ container: 'conflict', task: 't3', expectedToken: 0, claim: { runnerId: 'elsewhere', attempt: 1, leaseMs: 60_000, checkpoint: null } });
    const error = await Runner.create({ store, container: flat('conflict', [], 'a', 30_000), ...fast }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DefinitionConflictError);
    expect((error as DefinitionConflictError).differences.join('\n')).toMatch(/task "t3": options .* \(it is running/);
  });
});
