/**
 * Values BSON cannot store faithfully are refused with a typed error instead
 * of being silently changed: task inputs before anything is written, outputs
 * and checkpoints as a failure that is not retried. Values over the 16 MiB
 * document limit fail with their size and the limit.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  defineContainer,
  InvalidOptionError,
  MongoStore,
  Runner,
  UnstorableValueError,
  type TaskSnapshot,
} from '../src/index.js';
import { uniqueName } from './support/compat.js';
import { databasePerFile, testMongoKind } from './support/database.js';

const db = databasePerFile();
let store: MongoStore;
beforeAll(async () => {
  store = await MongoStore.create(db().connection);
});
const fast = { pollMs: 30, checkpointIntervalMs: 0 } as const;

function circular(): Record<string, unknown> {
  const o: Record<string, unknown> = { a: 1 };
  o.self = o;
  return o;
}

/** Values the driver would change, each with what the error must say. */
const UNFAITHFUL: Array<[string, () => unknown, RegExp]> = [
  ['a function', () => () => 1, /function/],
  ['a Symbol', () => Symbol('s'), /symbol/],
  ['a function inside an object', () => ({ keep: 1, fn: () => 1 }), /\.fn.*function/],
  ['a small bigint', () => 42n, /bigint \(42n\)/],
  ['a bigint beyond 64 bits', () => ({ n: 12345678901234567890n }), /\.n.*bigint/],
  ['a Map', () => new Map([['a', 1]]), /Map instance/],
  ['an own __proto__ key', () => JSON.parse('{"__proto__": {"x": 1}, "y": 2}') as unknown, /__proto__/],
  ['a $ key', () => ({ $where: 'x' }), /"\$where"/],
  ['a Symbol key', () => ({ [Symbol('k')]: 1 }), /Symbol keys/],
  ['a circular structure', circular, /circular/],
];

async function taskState(container: string, task: string): Promise<TaskSnapshot['state']> {
  const snapshot = await store.loadSnapshot(container);
  const t = snapshot?.tasks.find((x) => x.record.name === task);
  if (!t) throw new Error(`no task ${task}`);
  return t.state;
}

describe('task inputs', () => {
  it.each(UNFAITHFUL)('%s as a declared input: InvalidOptionError from Runner.create, nothing written', async (_label, make, message) => {
    const name = uniqueName('input');
    const def = defineContainer(name).task('t', { input: make() as never }, async () => 1);
    const err = await Runner.create({ connection: db().connection, container: def }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect((err as Error).message).toMatch(/input.*\(task "t"\)/);
    expect((err as Error).message).toMatch(message);
    await expect(store.getContainer(name)).resolves.toBeNull();
  });

  it('a bad input of a task added at run time is refused; the adding task sees the error', async () => {
    const name = uniqueName('dyn-input');
    let seen: unknown;
    const def = defineContainer(name)
      .handler('child', async () => 1)
      .task('parent', { retries: 0 }, async (ctx) => {
        seen = await ctx.addTasks([{ name: 'c1', handler: 'child', input: { big: 1n } }]).catch((e: unknown) => e);
        return 'done';
      });
    const runner = await Runner.create({ connection: db().connection, container: def, ...fast });
    expect((await runner.run()).status).toBe('succeeded');
    expect(seen).toBeInstanceOf(InvalidOptionError);
    expect((await store.loadSnapshot(name))!.tasks.map((t) => t.record.name)).toEqual(['parent']);
  });
});

describe('task inputs: every limit gets the typed error', () => {
  it('an oversized input to ctx.addTasks is refused with UnstorableValueError naming size and limit; nothing is added', async () => {
    const name = uniqueName('big-dyn-input');
    let seen: unknown;
    const def = defineContainer(name)
      .handler('child', async () => 1)
      .task('parent', { retries: 0 }, async (ctx) => {
        seen = await ctx.addTasks([{ name: 'c1', handler: 'child', input: { blob: 'z'.repeat(17 * 1024 * 1024) } }]).catch((e: unknown) => e);
        return 'done';
      });
    const runner = await Runner.create({ connection: db().connection, container: def, ...fast });
    expect((await runner.run()).status).toBe('succeeded');
    expect(seen).toBeInstanceOf(UnstorableValueError);
    expect((seen as Error).message).toMatch(/input of task "c1".*-byte BSON document, over the limit of 16777216 bytes/);
    expect((await store.loadSnapshot(name))!.tasks.map((t) => t.record.name)).toEqual(['parent']);
  }, 30_000);

  it('a declared input nesting 100 levels (101 as stored) fails Runner.create; nothing is written', async () => {
    const name = uniqueName('deep-input');
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = { a: deep };
    const err = await Runner.create({ connection: db().connection, container: defineContainer(name).task('t', { input: deep as never }, async () => 1) }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toMatch(/nests deeper than 100 levels as stored/);
    await expect(store.getContainer(name)).resolves.toBeNull();
  });

  it('a declared input the server refuses (NaN on FerretDB v1) fails Runner.create with UnstorableValueError; nothing is written', async () => {
    const name = uniqueName('nan-input');
    const def = defineContainer(name).task('t', { input: { rows: [{ ratio: Number.NaN }] } as never }, async () => 1);
    const err = await Runner.create({ connection: db().connection, container: def }).catch((e: unknown) => e);
    if (testMongoKind() !== 'ferretdb') {
      expect(err).toBeInstanceOf(Runner); // MongoDB stores NaN
      return;
    }
    expect(err).toBeInstanceOf(UnstorableValueError);
    expect((err as Error).message).toMatch(/input of task "t" cannot be stored: input\.rows\[0\]\.ratio is NaN, which this server cannot store: the server closes the connection/);
    await expect(store.getContainer(name)).resolves.toBeNull();
  });
});

describe('task outputs', () => {
  it.each(UNFAITHFUL)('%s as an output: the task fails with UnstorableValueError, without retries', async (_label, make, message) => {
    const name = uniqueName('output');
    let calls = 0;
    const def = defineContainer(name).task('t', { retries: 3, backoff: { initialMs: 0 } }, async () => {
      calls += 1;
      return make();
    });
    const runner = await Runner.create({ connection: db().connection, container: def, ...fast });
    expect((await runner.run()).status).toBe('failed');
    expect(calls).toBe(1);
    const state = await taskState(name, 't');
    expect(state.status).toBe('failed');
    expect(state.output).toBeNull();
    expect(state.lastError).toMatchObject({ name: 'UnstorableValueError', code: 'PTS_UNSTORABLE_VALUE' });
    expect(state.lastError!.message).toMatch(/^The output of task "t" cannot be stored: output/);
    expect(state.lastError!.message).toMatch(message);
  });

  it('an output over the BSON limit fails once, with its size and the limit', async () => {
    const name = uniqueName('big-output');
    let calls = 0;
    const def = defineContainer(name).task('t', { retries: 2, backoff: { initialMs: 0 } }, async () => {
      calls += 1;
      return 'x'.repeat(17 * 1024 * 1024);
    });
    const runner = await Runner.create({ connection: db().connection, container: def, ...fast });
    expect((await runner.run()).status).toBe('failed');
    expect(calls).toBe(1);
    const { lastError } = await taskState(name, 't');
    expect(lastError?.code).toBe('PTS_UNSTORABLE_VALUE');
    expect(lastError?.message).toMatch(/a 178\d{5}-byte BSON document, over the limit of 16777216 bytes \(16 MiB\)/);
  }, 30_000);
});

describe('checkpoints', () => {
  it('an unstorable checkpoint is refused at once with UnstorableValueError; nothing is written', async () => {
    const name = uniqueName('cp');
    let refused: unknown;
    const def = defineContainer(name).task('t', async (ctx) => {
      await ctx.checkpoint({ ok: 1 });
      refused = await ctx.checkpoint({ when: new Map() }).catch((e: unknown) => e);
      return 'fine';
    });
    const runner = await Runner.create({ connection: db().connection, container: def, ...fast });
    expect((await runner.run()).status).toBe('succeeded');
    expect(refused).toBeInstanceOf(UnstorableValueError);
    expect((refused as UnstorableValueError).message).toMatch(/checkpoint of task "t".*checkpoint\.when.*Map/);
    expect((await taskState(name, 't')).checkpoint).toEqual({ ok: 1 });
  });

  it('a checkpoint over the BSON limit fails the task once, with its size and the limit', async () => {
    const name = uniqueName('big-cp');
    let calls = 0;
    const def = defineContainer(name).task('t', { retries: 2, backoff: { initialMs: 0 } }, async (ctx) => {
      calls += 1;
      await ctx.checkpoint({ blob: 'y'.repeat(17 * 1024 * 1024) });
      return 'unreachable';
    });
    const runner = await Runner.create({ connection: db().connection, container: def, ...fast });
    expect((await runner.run()).status).toBe('failed');
    expect(calls).toBe(1);
    const state = await taskState(name, 't');
    expect(state.lastError?.code).toBe('PTS_UNSTORABLE_VALUE');
    expect(state.lastError?.message).toMatch(/checkpoint of task "t".*-byte BSON document, over the limit of 16777216 bytes/);
  }, 30_000);

  it('a checkpoint over the BSON limit fails the task even when the handler catches the rejection', async () => {
    // Decided: a throttled checkpoint may be written after the call returned, so
    // its refusal cannot reliably reach the call that caused it; a task whose
    // state cannot be saved fails, whatever the handler does with the promise.
    const name = uniqueName('big-cp-caught');
    let caught: unknown;
    let returned = false;
    const def = defineContainer(name).task('t', { retries: 2, backoff: { initialMs: 0 } }, async (ctx) => {
      caught = await ctx.checkpoint({ blob: 'y'.repeat(17 * 1024 * 1024) }).catch((e: unknown) => e);
      await ctx.checkpoint({ small: true }).catch(() => undefined);
      returned = true;
      return 'caught it';
    });
    const runner = await Runner.create({ connection: db().connection, container: def, ...fast });
    expect((await runner.run()).status).toBe('failed');
    expect(caught).toBeInstanceOf(UnstorableValueError);
    expect(returned).toBe(true);
    const state = await taskState(name, 't');
    expect(state).toMatchObject({ status: 'failed', failures: 1, output: null });
    expect(state.lastError?.code).toBe('PTS_UNSTORABLE_VALUE');
  }, 30_000);
});
