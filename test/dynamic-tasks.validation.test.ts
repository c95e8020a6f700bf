import { expect, it } from 'vitest';
import { CycleError, defineContainer, DuplicateTaskError, InvalidNameError, InvalidOptionError, Runner, UnknownDependencyError } from '../src/index.js';
import { databasePerFile } from './support/database.js';
import { snapshotOf, stateOf } from './support/engine.js';

const db = databasePerFile();

it('tasks added at run time are validated before anything is written, and then run with their dependencies', async () => {
  const errors: Record<string, unknown> = {};
  const order: string[] = [];
  const container = defineContainer('adds')
    .handler('step', async (ctx) => {
      order.push(ctx.task);
      return (ctx.input as { n: number }).n;
    })
    .handler('sum', async (ctx) => {
      order.push(ctx.task);
      return Object.values(ctx.deps as Record<string, number>).reduce((a, b) => a + b, 0);
    })
    .task('plan', async (ctx) => {
      const attempt = async (label: string, specs: Parameters<typeof ctx.addTasks>[0]) => {
        errors[label] = await ctx.addTasks(specs).then(
          () => null,
          (e: unknown) => e,
        );
      };
      await attempt('unknown handler', [{ name: 'x', handler: 'nope' }]);
      await attempt('unknown dependency', [{ name: 'x', handler: 'step', dependsOn: ['ghost'] }]);
      await attempt('cycle', [
        { name: 'x', handler: 'step', dependsOn: ['y'] },
        { name: 'y', handler: 'step', dependsOn: ['x'] },
      ]);
      await attempt('duplicate', [
        { name: 'x', handler: 'step' },
        { name: 'x', handler: 'step' },
      ]);
      await attempt('bad name', [{ name: 'a.b', handler: 'step' }]);
      const first = await ctx.addTasks([
        { name: 'one', handler: 'step', input: { n: 1 } },
        { name: 'two', handler: 'step', input: { n: 2 }, dependsOn: ['one'] },
        { name: 'total', handler: 'sum', dependsOn: ['one', 'two'] },
      ]);
      const again = await ctx.addTasks([{ name: 'one', handler: 'step', input: { n: 100 } }]);
      return { first: first.added, again: again.added };
    });
  const runner = await Runner.create({ connection: db().connection, container, pollMs: 50 });
  expect((await runner.run()).status).toBe('succeeded');

  expect(errors['unknown handler']).toBeInstanceOf(InvalidOptionError);
  expect(errors['unknown dependency']).toBeInstanceOf(UnknownDependencyError);
  expect(errors['cycle']).toBeInstanceOf(CycleError);
  expect(errors['duplicate']).toBeInstanceOf(DuplicateTaskError);
  expect(errors['bad name']).toBeInstanceOf(InvalidNameError);

  const snap = await snapshotOf(db().connection, 'adds');
  // Only the valid batch was written; re-adding "one" changed nothing.
  expect(snap.tasks.map((t) => t.record.name)).toEqual(['plan', 'one', 'two', 'total']);
  expect(stateOf(snap, 'plan').output).toEqual({ first: ['one', 'two', 'total'], again: [] });
  expect(snap.tasks.find((t) => t.record.name === 'one')!.record.input).toEqual({ n: 1 });
  expect(order).toEqual(['one', 'two', 'total']);
  expect(stateOf(snap, 'total').output).toBe(3);
});
