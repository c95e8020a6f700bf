import { describe, expect, it } from 'vitest';
import {
  compileDefinition,
  CycleError,
  defineContainer,
  DuplicateTaskError,
  InvalidNameError,
  InvalidOptionError,
  Runner,
  UnknownDependencyError,
  ValidationError,
} from '../src/index.js';
import { databasePerFile } from './support/database.js';

const noop = async () => null;

describe('container validation', () => {
  it('names the path of a cycle', () => {
    const build = () =>
      compileDefinition({
        name: 'c',
        tasks: [
          { name: 'a', dependsOn: ['c'], handler: noop },
          { name: 'b', dependsOn: ['a'], handler: noop },
          { name: 'c', dependsOn: ['b'], handler: noop },
          { name: 'd', handler: noop },
        ],
      });
    expect(build).toThrow(CycleError);
    try {
      build();
    } catch (e) {
      const cycle = (e as CycleError).cycle;
      expect(cycle[0]).toBe(cycle[cycle.length - 1]);
      expect(new Set(cycle)).toEqual(new Set(['a', 'b', 'c']));
      expect((e as CycleError).message).toMatch(/a -> .* -> .*/);
      expect((e as CycleError).code).toBe('PTS_CYCLE');
    }
  });

  it('rejects a task depending on itself', () => {
    expect(() => compileDefinition({ name: 'c', tasks: [{ name: 'a', dependsOn: ['a'], handler: noop }] })).toThrow(
      /a -> a/,
    );
  });

  it('rejects unknown dependencies and duplicate names', () => {
    expect(() => defineContainer('c').task('a', { dependsOn: ['nope' as never] }, noop).build()).toThrow(
      UnknownDependencyError,
    );
    expect(() => defineContainer('c').task('a', noop).task('a', noop).build()).toThrow(DuplicateTaskError);
  });

  it.each([
    ['$where', /start with "\$"/],
    ['a.b', /contain "\."/],
    ['', /empty/],
    ['x'.repeat(201), /at most 200/],
    [' padded', /whitespace/],
  ])('rejects the unsafe task name %j', (name, message) => {
    const build = () => defineContainer('c').task(name, noop).build();
    expect(build).toThrow(InvalidNameError);
    expect(build).toThrow(message);
  });

  it('rejects unsafe container names and bad options with the option named', () => {
    expect(() => defineContainer('$c').build()).toThrow(InvalidNameError);
    expect(() => defineContainer('c').task('a', { retries: -1 }, noop).build()).toThrow(/retries \(task "a"\)/);
    expect(() => defineContainer('c').task('a', { timeoutMs: Number.NaN }, noop).build()).toThrow(InvalidOptionError);
    expect(() => defineContainer('c').task('a', { backoff: { factor: 0.5 } }, noop).build()).toThrow(/backoff.factor/);
    for (const affinity of ['', 'k'.repeat(201), 42 as unknown as string]) {
      expect(() => defineContainer('c').task('a', { affinity }, noop).build()).toThrow(/"affinity \(task "a"\)": must be a string of 1 to 200 characters/);
    }
    expect(defineContainer('c').task('a', { affinity: 'file-1' }, noop).build().tasks[0]!.options.affinity).toBe('file-1');
  });

  it('all validation errors share one base class with a stable code', () => {
    try {
      defineContainer('c').task('a', noop).task('a', noop).build();
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError);
      expect((e as ValidationError).code).toBe('PTS_DUPLICATE_TASK');
    }
  });
});

describe('validation happens before anything is written', () => {
  const db = databasePerFile();

  it('an invalid container leaves the database untouched', async () => {
    const bad = defineContainer('bad').task('a', { dependsOn: ['b' as never] }, noop);
    await expect(Runner.create({ connection: db().connection, container: bad })).rejects.toThrow(UnknownDependencyError);
    await expect(
      Runner.create({ connection: db().connection, container: defineContainer('ok').task('a', noop), concurrency: 0 }),
    ).rejects.toThrow(/concurrency/);
    const collections = await db().connection.db!.listCollections().toArray();
    expect(collections.map((c) => c.name)).toEqual([]);
  });
});
