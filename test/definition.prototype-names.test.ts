/**
 * Task and handler names that are `Object.prototype` keys (`__proto__`,
 * `constructor`, `toString`, ...) are names like any other: `ctx.deps` is
 * keyed by task name, and a dependency called `__proto__` must neither be
 * lost nor become the prototype of `ctx.deps`.
 */
import { expect, it } from 'vitest';
import { defineContainer, Runner } from '../src/index.js';
import { uniqueName } from './support/compat.js';
import { databasePerFile } from './support/database.js';
import { snapshotOf, stateOf } from './support/engine.js';

const db = databasePerFile();
const fast = { pollMs: 30, checkpointIntervalMs: 0 } as const;

it("the issue's example: a dependent of `__proto__` receives its output, not {}", async () => {
  const name = uniqueName('proto');
  const def = defineContainer(name)
    .task('__proto__', async () => 5)
    .task('constructor', { dependsOn: ['__proto__'] }, async (ctx) => ctx.deps['__proto__']);
  const runner = await Runner.create({ connection: db().connection, container: def, ...fast });
  expect((await runner.run()).status).toBe('succeeded');
  expect(stateOf(await snapshotOf(db().connection, name), 'constructor').output).toBe(5);
});

it('a dependency named `__proto__` that returns an object is an own key of ctx.deps, never its prototype', async () => {
  const name = uniqueName('proto-obj');
  let seen: { me: unknown; keys: string[]; own: unknown; proto: unknown } | undefined;
  const def = defineContainer(name)
    .task('__proto__', async () => ({ me: 'p' }))
    .task('toString', async () => 'ts')
    .task('hasOwnProperty', async () => 'hop')
    .task('join', { dependsOn: ['__proto__', 'toString', 'hasOwnProperty'] }, async (ctx) => {
      const deps = ctx.deps as Record<string, unknown>;
      seen = {
        me: (deps as { me?: unknown }).me,
        keys: Object.keys(deps).sort(),
        own: Object.getOwnPropertyDescriptor(deps, '__proto__')?.value,
        proto: Object.getPrototypeOf(deps),
      };
      return [deps['toString'], deps['hasOwnProperty']];
    });
  const runner = await Runner.create({ connection: db().connection, container: def, ...fast });
  expect((await runner.run()).status).toBe('succeeded');
  expect(seen).toEqual({ me: undefined, keys: ['__proto__', 'hasOwnProperty', 'toString'], own: { me: 'p' }, proto: null });
  expect(stateOf(await snapshotOf(db().connection, name), 'join').output).toEqual(['ts', 'hop']);
});

it('a handler registered as `__proto__` runs tasks added at run time', async () => {
  const name = uniqueName('proto-handler');
  const def = defineContainer(name)
    .handler('__proto__', async (ctx) => `ran ${ctx.task}`)
    .task('discover', async (ctx) => (await ctx.addTasks([{ name: 'dyn', handler: '__proto__' }])).added);
  const runner = await Runner.create({ connection: db().connection, container: def, ...fast });
  expect((await runner.run()).status).toBe('succeeded');
  expect(stateOf(await snapshotOf(db().connection, name), 'dyn').output).toBe('ran dyn');
});
