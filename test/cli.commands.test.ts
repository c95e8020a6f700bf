/**
 * The `pts` CLI as a real subprocess against the test database: list/status
 * JSON match what the engine ran, exit codes, retry, cancel and graph.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineContainer, getContainerStatus, NonRetryableError, Runner } from '../src/index.js';
import { runPts } from './cli.support.js';
import { spawnTsChild } from './support/child.js';
import { useTestDatabase, type TestDatabase } from './support/database.js';

let db: TestDatabase;
const fast = { pollMs: 50, checkpointIntervalMs: 0 } as const;
/** `parse` fails until this is set (so `retry` can be followed by a successful run). */
let parseWorks = false;

function nightly() {
  return defineContainer('nightly', { failFast: false })
    .task('fetch', async (ctx) => {
      await ctx.progress(0.5, 'half way');
      await ctx.progress(1, 'fetched 3 files');
      return 3;
    })
    .task('parse', { dependsOn: ['fetch'], retries: 0 }, async () => {
      if (!parseWorks) throw new NonRetryableError('bad header in file 2');
      return 'parsed';
    })
    .task('index', { dependsOn: ['fetch'] }, async () => 'indexed')
    .task('publish', { dependsOn: ['parse', 'index'] }, async () => 'published');
}

const status = (name: string) => getContainerStatus(name, { connection: db.connection });
const json = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;
const pts = (args: string[], env: Record<string, string | undefined> = {}) => runPts(db.uriWithDb, args, env);

beforeAll(async () => {
  db = await useTestDatabase();
  const ran = await (await Runner.create({ connection: db.connection, container: nightly(), ...fast })).run();
  expect(ran.status).toBe('failed');
  const ok = defineContainer('small').task('only', async () => 1);
  expect((await (await Runner.create({ connection: db.connection, container: ok, ...fast })).run()).status).toBe('succeeded');
});
afterAll(() => db?.drop());

describe('pts list / status', () => {
  it('list --json reports every container as the engine left it', async () => {
    const res = await pts(['list', '--json']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const list = JSON.parse(res.stdout) as Array<Record<string, unknown>>;
    expect(list.map((c) => c.name)).toEqual(['nightly', 'small']);
    const [n, s] = list;
    expect(n).toMatchObject({
      status: 'failed',
      total: 4,
      counts: { pending: 0, running: 0, succeeded: 2, failed: 1, skipped: 1, cancelled: 0 },
    });
    expect(s).toMatchObject({ status: 'succeeded', total: 1, percentComplete: 100, counts: { succeeded: 1 } });
    const { tasks: _t, ...expected } = await status('nightly');
    expect(n).toEqual(json(expected));
    expect(n).not.toHaveProperty('tasks');
  });

  it('list prints a table', async () => {
    const res = await pts(['list']);
    expect(res.code).toBe(0);
    const lines = res.stdout.split('\n');
    expect(lines[0]).toMatch(/^CONTAINER\s+STATUS\s+DONE\s+TASKS\s+CREATED$/);
    // A failed container is not "100 %" done: parse failed at 0 % and publish was skipped.
    expect(lines[1]).toMatch(/^nightly\s+failed\s+50%\s+2\/4 succeeded \(1 failed, 1 skipped\)\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
    expect(lines[2]).toMatch(/^small\s+succeeded\s+100%\s+1\/1 succeeded\s/);
  });

  it('status --json is the ContainerStatusReport of what ran', async () => {
    const res = await pts(['status', 'nightly', '--json']);
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout) as { tasks: Array<Record<string, any>> };
    expect(report).toEqual(json(await status('nightly')));
    const byName = Object.fromEntries(report.tasks.map((t) => [t.name, t]));
    // A finished task has no current status text; its last one is kept apart.
    expect(byName.fetch).toMatchObject({ status: 'succeeded', attempt: 1, percentComplete: 100, statusText: '', lastStatusText: 'fetched 3 files' });
    expect(byName.parse).toMatchObject({ status: 'failed', attempt: 1, percentComplete: 0, lastError: { name: 'NonRetryableError', message: 'bad header in file 2' } });
    expect(byName.publish).toMatchObject({ status: 'skipped', attempt: 0, percentComplete: 0 });
  });

  it('status prints tasks with attempts, status texts and the last error', async () => {
    const res = await pts(['status', 'nightly']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^Container: nightly$/m);
    expect(res.stdout).toMatch(/^Status:\s+failed$/m);
    expect(res.stdout).toMatch(/^fetch\s+succeeded\s+1\s+100%\s+\S+ \S+Z\s+\S+$/m);
    expect(res.stdout).not.toContain('fetched 3 files');
    expect(res.stdout).toMatch(/^parse\s+failed\s+1\s+/m);
    expect(res.stdout).toContain('last error (attempt 1): NonRetryableError: bad header in file 2');
    expect(res.stdout).toMatch(/^publish\s+skipped\s+0\s+/m);
    expect(res.stdout).not.toContain('\u001b');
  });
});

describe('pts errors and exit codes', () => {
  it('unknown container: exit 3 and one line on stderr', async () => {
    const commands = [['status', 'nope'], ['graph', 'nope'], ['retry', 'nope'], ['cancel', 'nope']];
    const results = await Promise.all(commands.map((args) => pts(args)));
    results.forEach((res, i) => {
      expect(res.code, commands[i]!.join(' ')).toBe(3);
      expect(res.stdout).toBe('');
      expect(res.stderr).toBe('pts: Unknown container "nope"\n');
    });
  });

  it('bad, missing or unreachable URI: non-zero exit and one line, without the password', async () => {
    const [scheme, missing, unreachable, usage] = await Promise.all([
      runPts('http://localhost/x', ['list']),
      runPts(undefined, ['list'], { MONGODB_URI: '' }),
      runPts(undefined, ['--uri', 'mongodb://user:s3cret@127.0.0.1:1/x', 'list']),
      pts(['status', 'nightly', '--interval', 'soon']),
    ]);
    expect(scheme.code).toBe(2);
    expect(scheme.stderr).toMatch(/^pts: invalid MongoDB URI: .*\n$/);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('pts: MONGODB_URI is not set (set it or pass --uri <uri>)\n');
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^pts: cannot connect to MongoDB at 127\.0\.0\.1:1: [^\n]+\n$/);
    expect(unreachable.stderr).not.toContain('s3cret');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^pts: invalid --interval "soon"[^\n]*\n$/);
    for (const r of [scheme, missing, unreachable, usage]) expect(r.stderr).not.toMatch(/\n\s+at /);
  }, 30_000);

  it('unknown command or option: exit 2', async () => {
    const [cmd, opt] = await Promise.all([pts(['frobnicate']), pts(['list', '--bogus'])]);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toMatch(/^pts: unknown command 'frobnicate'/);
    expect(opt.code).toBe(2);
    expect(opt.stderr).toMatch(/^pts: unknown option '--bogus'/);
  });

  it('PTS_DEBUG=1 adds the stack', async () => {
    const res = await pts(['status', 'nope'], { PTS_DEBUG: '1' });
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/^pts: Unknown container "nope"\nNotFoundError: .*\n\s+at /);
  });
});

describe('pts retry', () => {
  it('rejects tasks that cannot be retried and unknown tasks', async () => {
    const [succeeded, unknown] = await Promise.all([pts(['retry', 'nightly', 'fetch']), pts(['retry', 'nightly', 'nope'])]);
    expect(succeeded.code).toBe(2);
    expect(succeeded.stderr).toBe('pts: Task "fetch" is succeeded; only failed, skipped or cancelled tasks can be retried\n');
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toBe('pts: Unknown task "nope": not in container "nightly"\n');
  });

  it('resets the failed task and its skipped dependent; a runner then finishes the container', async () => {
    const res = await pts(['retry', 'nightly', 'parse']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout.split('\n')).toEqual(['Reset 2 tasks of "nightly" to pending:', '  parse', '  publish']);

    const after = await status('nightly');
    expect(after.status).toBe('running');
    expect(after.tasks.map((t) => [t.name, t.status])).toEqual([
      ['fetch', 'succeeded'],
      ['parse', 'pending'],
      ['index', 'succeeded'],
      ['publish', 'pending'],
    ]);

    const again = await pts(['retry', 'nightly', '--json']);
    expect(JSON.parse(again.stdout)).toEqual({ container: 'nightly', reset: [] });

    parseWorks = true;
    const ran = await (await Runner.create({ connection: db.connection, container: nightly(), ...fast })).run();
    expect(ran.status).toBe('succeeded');
    expect((await status('nightly')).tasks.find((t) => t.name === 'parse')).toMatchObject({ status: 'succeeded', attempt: 2 });
  });
});

describe('pts cancel', () => {
  it('cancels a running container, then reports it already finished; watch exits 5', async () => {
    const container = defineContainer('to-cancel')
      .task('first', async () => 1)
      .task('second', { dependsOn: ['first'] }, async () => 2);
    await Runner.create({ connection: db.connection, container, ...fast }); // created, never run
    expect((await status('to-cancel')).status).toBe('running');

    const res = await pts(['cancel', 'to-cancel']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toBe('Container "to-cancel" cancelled.');
    const after = await status('to-cancel');
    expect(after.status).toBe('cancelled');
    expect(after.cancelRequested).toBe(true);
    expect(after.tasks.map((t) => t.status)).toEqual(['cancelled', 'cancelled']);

    const [twice, watch] = await Promise.all([pts(['cancel', 'to-cancel', '--json']), pts(['status', 'to-cancel', '--watch', '--json'])]);
    expect(twice.code).toBe(0);
    expect(JSON.parse(twice.stdout)).toEqual({ container: 'to-cancel', cancelled: false, status: 'cancelled' });
    expect(watch.code).toBe(5);
    expect(watch.stdout.split('\n')).toHaveLength(1);
    expect(JSON.parse(watch.stdout)).toMatchObject({ name: 'to-cancel', status: 'cancelled' });
  });

  it('status --watch stops on SIGINT with exit 130', async () => {
    await Runner.create({ connection: db.connection, container: defineContainer('idle').task('t', async () => 1), ...fast });
    const child = spawnTsChild('src/cli/main.ts', ['status', 'idle', '--watch', '--interval', '100'], { MONGODB_URI: db.uriWithDb }, {
      echoStderr: false,
    });
    await child.waitForLine(/^\[\d\d:\d\d:\d\d\] idle running 0%/);
    const exit = await child.kill('SIGINT');
    expect(exit).toEqual({ code: 130, signal: null });
    expect(child.stderr).toBe('');
  });
});

describe('pts graph', () => {
  const nodeLine = /^ {2}(t\d+)\["([^"]*)"\]:::(pending|running|succeeded|failed|skipped|cancelled)$/;

  it('prints the DAG as Mermaid with statuses', async () => {
    const res = await pts(['graph', 'small']);
    expect(res.code).toBe(0);
    const lines = res.stdout.split('\n');
    expect(lines[0]).toBe('flowchart TD');
    expect(lines).toContain('  t0["only<br/>succeeded"]:::succeeded');
    for (const s of ['pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled']) {
      expect(lines.some((l) => l.startsWith(`  classDef ${s} fill:`))).toBe(true);
    }
  });

  it('sanitizes ids and escapes names that would break Mermaid', async () => {
    const odd = 'say "hi" <b>#1 | `x` & [y]';
    const container = defineContainer('odd names', { failFast: false })
      .task(odd, async () => 1)
      .task('after', { dependsOn: [odd] }, async () => {
        throw new NonRetryableError('no');
      });
    await (await Runner.create({ connection: db.connection, container, ...fast })).run();
    const res = await pts(['graph', 'odd names']);
    expect(res.code).toBe(0);
    const lines = res.stdout.split('\n');
    expect(lines[0]).toBe('flowchart TD');
    const nodes = lines.filter((l) => l.startsWith('  t'));
    const defs = nodes.filter((l) => l.includes('['));
    expect(defs).toHaveLength(2);
    for (const l of defs) expect(l).toMatch(nodeLine);
    expect(defs[0]).toBe('  t0["say #34;hi#34; #60;b#62;#35;1 #124; #96;x#96; #38; [y]<br/>succeeded"]:::succeeded');
    expect(defs[1]).toBe('  t1["after<br/>failed"]:::failed');
    expect(nodes).toContain('  t0 --> t1');
  });
});
