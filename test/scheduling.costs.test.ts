/**
 * What a run costs in database round trips, counted with the driver's
 * command monitoring on a real server (counts, never times): a step reads
 * what changed, not the whole container; appends of one turn share one
 * insert; outputs are read only for the task about to start; a resume reads
 * the container once.
 */
import mongoose from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineContainer, Runner, type ContainerBuilder } from '../src/index.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
let connection: mongoose.Connection;

interface Tally {
  /** Commands by `name collection`. */
  commands: Map<string, number>;
  /** Documents returned in reply cursors. */
  docs: number;
  /** Of those, documents carrying an `output` field. */
  outputs: number;
  /** The filters of finds on the task log, as JSON. */
  logFilters: string[];
}
let tally: Tally | null = null;

const IGNORED = new Set(['hello', 'ismaster', 'isMaster', 'endSessions', 'ping', 'buildInfo', 'saslStart', 'saslContinue']);

beforeAll(async () => {
  connection = await mongoose.createConnection(db().uriWithDb, { monitorCommands: true }).asPromise();
  const client = connection.getClient();
  client.on('commandStarted', (e) => {
    if (!tally || IGNORED.has(e.commandName)) return;
    const target = e.command[e.commandName];
    const key = `${e.commandName} ${typeof target === 'string' ? target : ''}`.trim();
    tally.commands.set(key, (tally.commands.get(key) ?? 0) + 1);
    if (key === 'find pts_transitions') tally.logFilters.push(JSON.stringify(e.command.filter));
  });
  client.on('commandSucceeded', (e) => {
    if (!tally || IGNORED.has(e.commandName)) return;
    const cursor = (e.reply as { cursor?: { firstBatch?: unknown[]; nextBatch?: unknown[] } } | undefined)?.cursor;
    const batch = (cursor?.firstBatch ?? cursor?.nextBatch ?? []) as Array<Record<string, unknown>>;
    tally.docs += batch.length;
    tally.outputs += batch.filter((d) => d && typeof d === 'object' && 'output' in d).length;
  });
});
afterAll(() => connection?.close());

async function measure<T>(body: () => Promise<T>): Promise<{ result: T; tally: Tally; commands: number }> {
  tally = { commands: new Map(), docs: 0, outputs: 0, logFilters: [] };
  try {
    const result = await body();
    return { result, tally, commands: [...tally.commands.values()].reduce((a, b) => a + b, 0) };
  } finally {
    tally = null;
  }
}

function chain(name: string, n: number, output: (i: number) => unknown = (i) => i): ContainerBuilder<any> {
  let c = defineContainer(name) as ContainerBuilder<any>;
  for (let i = 0; i < n; i++) c = c.task(`t${i}`, i > 0 ? { dependsOn: [`t${i - 1}`] } : {}, async () => output(i));
  return c;
}

function flat(name: string, n: number): ContainerBuilder<any> {
  let c = defineContainer(name) as ContainerBuilder<any>;
  for (let i = 0; i < n; i++) c = c.task(`t${i}`, async () => i);
  return c;
}

describe('scheduling costs what changed', () => {
  it('a 200-task chain costs about two commands per task and reads almost nothing, not a whole-container read per step', async () => {
    const runner = await Runner.create({ connection, container: chain('chain-200', 200), concurrency: 16 });
    const { result, tally: t, commands } = await measure(() => runner.run());
    expect(result.status).toBe('succeeded');
    const detail = JSON.stringify(Object.fromEntries(t.commands));
    // The floor is 2: a claim and an outcome, each waiting for the one before.
    expect(commands / 200, detail).toBeLessThanOrEqual(2.2);
    // Re-reading the container at every step read about 200 documents per task.
    expect(t.docs / 200, detail).toBeLessThanOrEqual(0.5);
  });

  it('appends of one turn share one insert: a flat container of 400 tasks needs far fewer inserts than appends', async () => {
    const runner = await Runner.create({ connection, container: flat('flat-400', 400), concurrency: 16 });
    const { result, tally: t } = await measure(() => runner.run());
    expect(result.status).toBe('succeeded');
    const inserts = t.commands.get('insert pts_transitions') ?? 0;
    // 800 appends (a claim and an outcome per task); one insert each before.
    expect(inserts, JSON.stringify(Object.fromEntries(t.commands))).toBeLessThan(200);
  });

  it('one runner of concurrency 1 on 30 independent tasks: one handler at a time, in order, at most one insert per append', async () => {
    const order: string[] = [];
    let running = 0;
    let most = 0;
    let c = defineContainer('one-slot') as ContainerBuilder<any>;
    for (let i = 0; i < 30; i++) {
      c = c.task(`t${String(i).padStart(2, '0')}`, async (ctx) => {
        most = Math.max(most, ++running);
        order.push(ctx.task);
        await new Promise((r) => setTimeout(r, 5));
        running -= 1;
      });
    }
    const runner = await Runner.create({ connection, container: c, concurrency: 1 });
    const { result, tally: t } = await measure(() => runner.run());
    expect(result.status).toBe('succeeded');
    // One handler at a time, in declaration order, as before.
    expect(most).toBe(1);
    expect(order).toEqual(Array.from({ length: 30 }, (_, i) => `t${String(i).padStart(2, '0')}`));
    const inserts = t.commands.get('insert pts_transitions') ?? 0;
    // 60 appends: at most one insert per append, never more. (Freeing the slot
    // when the handler settled let a claim land before the outcome before it:
    // runner.order-and-concurrency; a claim now rides behind that outcome.)
    expect(inserts, JSON.stringify(Object.fromEntries(t.commands))).toBeLessThanOrEqual(60);
  });

  it('one runner of concurrency 1 on 30 tasks: each claim rides in the insert of the outcome before it (one insert per task, not two)', async () => {
    let running = 0;
    let most = 0;
    let c = defineContainer('handover') as ContainerBuilder<any>;
    for (let i = 0; i < 30; i++) {
      c = c.task(`t${String(i).padStart(2, '0')}`, async () => {
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 5));
        running -= 1;
      });
    }
    const runner = await Runner.create({ connection, container: c, concurrency: 1 });
    const { result, tally: t } = await measure(() => runner.run());
    expect(result.status).toBe('succeeded');
    expect(most).toBe(1);
    const inserts = t.commands.get('insert pts_transitions') ?? 0;
    // 60 appends: the first claim, 29 outcome + next claim pairs, the last
    // outcome make 31 inserts; 60 when each claim waited for the outcome's
    // reply. A poll read in between may cost a pair its shared insert.
    expect(inserts, JSON.stringify(Object.fromEntries(t.commands))).toBeLessThanOrEqual(40);
  });

  it('outputs are read only for the task about to start, and a resume reads the container once', async () => {
    // Five tasks with large outputs (1 MiB each), then five chained no-op tasks depending on the last.
    const big = 'x'.repeat(1024 * 1024);
    let c = defineContainer('outputs') as ContainerBuilder<any>;
    for (let i = 0; i < 5; i++) c = c.task(`big${i}`, async () => ({ big, i }));
    c = c.task('n0', { dependsOn: ['big4'] }, async (ctx) => (ctx.deps as { big4: { i: number } }).big4.i);
    for (let i = 1; i < 5; i++) c = c.task(`n${i}`, { dependsOn: [`n${i - 1}`] }, async () => i);
    const first = await Runner.create({ connection, container: c, concurrency: 1, runnerId: 'first' });
    // Stop after the large outputs are stored, so that a second runner resumes.
    let stopping: Promise<void> | undefined;
    first.on('task:succeeded', (e) => {
      if (e.task === 'big4') stopping = first.stop();
    });
    await first.run();
    await stopping;

    const { result: second, tally: created } = await measure(() => Runner.create({ connection, container: c, concurrency: 1, runnerId: 'second' }));
    // The log is read once, without outputs: one find by filter, or (a small
    // container read by key, the default on FerretDB) each position at most once.
    const reads = created.logFilters;
    expect(reads.length, JSON.stringify(Object.fromEntries(created.commands))).toBeGreaterThan(0);
    if (reads.length > 1) expect(reads.every((f) => JSON.parse(f)._id !== undefined)).toBe(true);
    expect(new Set(reads).size, reads.join('\n')).toBe(reads.length);
    expect(created.outputs).toBe(0);
    const { result, tally: ran } = await measure(() => second.run());
    expect(result.status).toBe('succeeded');
    // n0 needs big4's output: that one is read, the other four never are.
    expect(ran.outputs, JSON.stringify(Object.fromEntries(ran.commands))).toBe(1);
  });

  it('waiting out a retry delay reads nothing but the container document', async () => {
    let c = flat('retry-wait', 300);
    let failures = 0;
    c = c.task('flaky', { retries: 1, backoff: { initialMs: 2500, factor: 1, jitter: 0 } }, async () => {
      if (failures++ === 0) throw new Error('first attempt fails');
      return 'ok';
    });
    const runner = await Runner.create({ connection, container: c, concurrency: 16, pollMs: 200 });
    const { result, tally: t } = await measure(() => runner.run());
    expect(result.status).toBe('succeeded');
    // About 12 polls during the 2.5 s wait; re-reading the container at each read 900 documents.
    expect(t.docs, JSON.stringify(Object.fromEntries(t.commands))).toBeLessThan(60);
  });

  it('an idle runner (no handler for what is left) backs off its full reads while the revision stands still', async () => {
    await Runner.create({ connection, container: flat('idle-backoff', 300), concurrency: 4 });
    // Bound to the persisted container without any handler: nothing here can run.
    const idle = await Runner.create({ connection, container: 'idle-backoff', handlers: {}, pollMs: 100 });
    idle.on('runner:error', () => undefined);
    const { tally: t } = await measure(async () => {
      const run = idle.run();
      // 20 polls, however long they take on a busy machine (a full read also reads the container document).
      const deadline = Date.now() + 120_000;
      while ((tally!.commands.get('find pts_containers') ?? 0) < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await idle.stop();
      return run;
    });
    const taskReads = t.commands.get('find pts_tasks') ?? 0;
    const headReads = t.commands.get('find pts_containers') ?? 0;
    // 20 polls: reading everything at each (300 tasks each time), as
    // before, or backing off (after 0.1, 0.2, 0.4, 0.8, 1.6 s...): about 5
    // on an idle machine; at most every other poll on a very slow one.
    expect(headReads).toBeGreaterThanOrEqual(20);
    expect(taskReads, JSON.stringify(Object.fromEntries(t.commands))).toBeLessThanOrEqual(headReads / 2);
    expect(t.docs).toBeLessThanOrEqual((headReads / 2) * 300);
  });
});
