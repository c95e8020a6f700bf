/**
 * Options that used to be silently misread: a string `dependsOn` split into
 * letters, timer options beyond Node's 2^31-1 ms turned into 1 ms, `run()`
 * after the run ended, and an unreachable server waited for 30 s.
 */
import mongoose from 'mongoose';
import { describe, expect, it } from 'vitest';
import {
  compileDefinition,
  createClient,
  defineContainer,
  InvalidOptionError,
  Runner,
  RunnerFinishedError,
  ServerUnreachableError,
} from '../src/index.js';
import { uniqueName, viaCallback } from './support/compat.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
const fast = { pollMs: 30, checkpointIntervalMs: 0 } as const;
const DAYS_30 = 30 * 24 * 3600 * 1000;

describe('dependsOn', () => {
  it('a string is an InvalidOptionError, not a list of letters', async () => {
    const b = defineContainer('c')
      .task('a', async () => 1)
      .task('b', async () => 2)
      .task('ab', { dependsOn: 'ab' as never }, async () => 3);
    expect(() => b.build()).toThrow(InvalidOptionError);
    expect(() => b.build()).toThrow(/dependsOn \(task "ab"\).*must be an array of task names, got a string \("ab"\)/);
    const spec = { name: 'c', tasks: [{ name: 'x', dependsOn: 'y' as never, handler: async () => 1 }] };
    expect(() => compileDefinition(spec)).toThrow(InvalidOptionError);
  });

  it('a string in a task added at run time is refused too', async () => {
    let seen: unknown;
    const def = defineContainer(uniqueName('dyn-dep'))
      .handler('child', async () => 1)
      .task('parent', async (ctx) => {
        seen = await ctx.addTasks([{ name: 'c', handler: 'child', dependsOn: 'parent' as never }]).catch((e: unknown) => e);
      });
    expect((await (await Runner.create({ connection: db().connection, container: def, ...fast })).run()).status).toBe('succeeded');
    expect(seen).toBeInstanceOf(InvalidOptionError);
  });
});

describe('timer options above 2^31-1 ms', () => {
  it('a task timeoutMs of 30 days is refused at build time', () => {
    const b = defineContainer('c').task('t', { timeoutMs: DAYS_30 }, async () => 1);
    expect(() => b.build()).toThrow(/timeoutMs \(task "t"\).*at most 2147483647 ms/);
    expect(() => defineContainer('c').task('t', { timeoutMs: 2 ** 31 - 1 }, async () => 1).build()).not.toThrow();
  });

  it.each(['leaseMs', 'heartbeatMs', 'stopTimeoutMs', 'pollMs', 'checkpointIntervalMs', 'serverSelectionTimeoutMs'])(
    'runner option %s is refused above it, before anything is written',
    async (option) => {
      const name = uniqueName('timer');
      const def = defineContainer(name).task('t', async () => 1);
      const options = { connection: db().connection, container: def, [option]: option === 'leaseMs' ? 90 * 24 * 3600 * 1000 : DAYS_30 };
      if (option === 'heartbeatMs') options.leaseMs = DAYS_30 * 2;
      const err = await Runner.create(options).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidOptionError);
      expect((err as InvalidOptionError).option).toBe(option === 'heartbeatMs' ? 'leaseMs' : option);
      expect((err as Error).message).toMatch(/at most 2147483647 ms/);
    },
  );
});

describe('run() after the run ended', () => {
  it('throws RunnerFinishedError telling to create a new Runner; during the run it returns the same promise', async () => {
    const def = defineContainer(uniqueName('twice')).task('t', async () => 1);
    const runner = await Runner.create({ connection: db().connection, container: def, ...fast });
    const first = runner.run();
    expect(runner.run()).toBe(first);
    expect((await first).status).toBe('succeeded');
    const again = await runner.run().catch((e: unknown) => e);
    expect(again).toBeInstanceOf(RunnerFinishedError);
    expect((again as Error).message).toMatch(/already ended \(succeeded\); create a new Runner/);
    expect((again as RunnerFinishedError).code).toBe('PTS_RUNNER_FINISHED');
  });

  it('after stop() as well', async () => {
    const def = defineContainer(uniqueName('stopped')).task('t', async () => 1);
    const runner = await Runner.create({ connection: db().connection, container: def, ...fast });
    await runner.stop();
    expect((await runner.run()).status).toBe('stopped');
    await expect(runner.run()).rejects.toBeInstanceOf(RunnerFinishedError);
  });
});

describe('an unreachable server fails fast, naming the host', () => {
  const unreachable = () => mongoose.createConnection('mongodb://user:pw@127.0.0.1:1/x'); // mongoose's default: 30 s

  it('Runner.create', async () => {
    const connection = unreachable();
    try {
      const started = Date.now();
      const err = await Runner.create({
        connection,
        container: defineContainer('c').task('t', async () => 1),
        serverSelectionTimeoutMs: 400,
      }).catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(err).toBeInstanceOf(ServerUnreachableError);
      expect((err as Error).message).toMatch(/^Cannot reach MongoDB at 127\.0\.0\.1:1: timed out after 400 ms/);
      expect((err as Error).message).not.toContain('pw');
    } finally {
      // Not awaited: closing waits for mongoose's own 30 s initial connection attempt.
      void connection.close(true).catch(() => undefined);
    }
  });

  it('a connection nobody opened says so instead of buffering for 10 s', async () => {
    const connection = mongoose.createConnection();
    const err = await Runner.create({ connection, container: 'c', serverSelectionTimeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServerUnreachableError);
    expect((err as Error).message).toMatch(/timed out after 300 ms \(the connection was never opened: call mongoose\.connect\(\)/);
  });

  it('the 0.0.1 client, through its callback', async () => {
    const connection = unreachable();
    try {
      const started = Date.now();
      const client = createClient({ connection, serverSelectionTimeoutMs: 400 });
      const { args } = await viaCallback((done) => client.getOrCreateTaskContainer('c', done));
      expect(Date.now() - started).toBeLessThan(5000);
      expect(args[0]).toBeInstanceOf(ServerUnreachableError);
      expect((args[0] as ServerUnreachableError).host).toBe('127.0.0.1:1');
      expect(() => createClient({ serverSelectionTimeoutMs: DAYS_30 })).toThrow(InvalidOptionError);
    } finally {
      // Not awaited: closing waits for mongoose's own 30 s initial connection attempt.
      void connection.close(true).catch(() => undefined);
    }
  });
});
