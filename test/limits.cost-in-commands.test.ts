/**
 * What limits shared by runners cost, counted in commands with the driver's
 * command monitoring on a real server (counts, never times). Issue 13 asks
 * for at most one extra write per claim and one per release: the slot
 * acquisitions of one turn share one insert, the releases of one turn one
 * delete, and a refused acquisition that took nothing deletes nothing.
 */
import mongoose from 'mongoose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { defineContainer, Runner, type ContainerBuilder } from '../src/index.js';
import { MongoStore } from '../src/store/mongo/mongo-store.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
let connection: mongoose.Connection;
/** Commands by `name collection`, plus `… dup` for inserts refused as duplicates and `… miss` for deletes that deleted nothing. */
let tally: Map<string, number> | null = null;

beforeAll(async () => {
  connection = await mongoose.createConnection(db().uriWithDb, { monitorCommands: true }).asPromise();
  const client = connection.getClient();
  const writes = new Map<number, string>();
  const add = (key: string) => tally?.set(key, (tally.get(key) ?? 0) + 1);
  client.on('commandStarted', (e) => {
    const target = e.command[e.commandName];
    const key = `${e.commandName} ${typeof target === 'string' ? target : ''}`.trim();
    add(key);
    writes.set(e.requestId, key);
  });
  client.on('commandSucceeded', (e) => {
    const key = writes.get(e.requestId);
    writes.delete(e.requestId);
    const reply = e.reply as { n?: number; writeErrors?: unknown[] } | undefined;
    if (key?.startsWith('insert') && reply?.writeErrors?.length) add(`${key} dup`);
    if (key?.startsWith('delete') && reply?.n === 0) add(`${key} miss`);
  });
});
afterAll(() => connection?.close());

async function measure<T>(body: () => Promise<T>): Promise<{ result: T; t: Map<string, number> }> {
  tally = new Map();
  try {
    return { result: await body(), t: tally };
  } finally {
    tally = null;
  }
}

function grouped(name: string, n: number, ms: number): ContainerBuilder<any> {
  let c = defineContainer(name) as ContainerBuilder<any>;
  for (let i = 0; i < n; i++) c = c.task(`t${i}`, { group: 'api' }, () => new Promise((r) => setTimeout(r, ms)));
  return c;
}

it('a global limit costs one slot insert per step and one slot delete per batch of outcomes, never more than one each per claim', async () => {
  const tasks = 40;
  const runner = await Runner.create({ connection, container: grouped('global-cost', tasks, 30), concurrency: 8, groups: { api: { global: 4 } } });
  const { result, t } = await measure(() => runner.run());
  expect(result.status).toBe('succeeded');
  const seen = JSON.stringify(Object.fromEntries(t));
  const inserts = t.get('insert pts_slots') ?? 0;
  const deletes = t.get('delete pts_slots') ?? 0;
  // Uncontended: every acquisition wins, every release deletes its slot.
  expect(t.get('insert pts_slots dup') ?? 0, seen).toBe(0);
  expect(t.get('delete pts_slots miss') ?? 0, seen).toBe(0);
  expect(inserts, seen).toBeGreaterThan(0);
  // At most one per claim and one per release (40 of each); a step claims up
  // to 4 tasks in one insert and their outcomes come together. One insert
  // per claim before the slot writes were grouped.
  expect(inserts, seen).toBeLessThanOrEqual(tasks * 0.75);
  expect(deletes, seen).toBeLessThanOrEqual(tasks * 0.75);
}, 60_000);

it('a rate limit costs at most one token insert per start, grouped per step, and its claims stay grouped', async () => {
  const tasks = 30;
  const runner = await Runner.create({
    connection,
    container: grouped('rate-cost', tasks, 5),
    concurrency: 10,
    groups: { api: { rate: { max: 10, perMs: 500 } } },
  });
  const { result, t } = await measure(() => runner.run());
  expect(result.status).toBe('succeeded');
  const seen = JSON.stringify(Object.fromEntries(t));
  expect(t.get('insert pts_slots dup') ?? 0, seen).toBe(0);
  // 30 starts in 3 windows of 10; a window's tokens are taken by a step or two.
  expect(t.get('insert pts_slots') ?? 0, seen).toBeLessThanOrEqual(tasks / 2);
  // 60 appends (a claim and an outcome each): claims that follow one token
  // insert share the log insert too (one per claim before).
  expect(t.get('insert pts_transitions') ?? 0, seen).toBeLessThanOrEqual(tasks);
}, 60_000);

it('acquisitions of one turn share one insert, each keeps all or nothing, and one refused outright deletes nothing', async () => {
  const a = await MongoStore.create(connection);
  const other = await mongoose.createConnection(db().uriWithDb).asPromise();
  try {
    const b = await MongoStore.create(other);
    const container = 'slots-grouped';
    // A container that exists (its incarnation is read once, then known).
    await Runner.create({ connection, container: grouped(container, 1, 1) });
    await a.readSlots(container, [{ scope: 'all', index: 0 }]);
    const holder = (task: string) => ({ task, token: 1, runnerId: 'A' });
    // Another runner holds group:api#0.
    const theirs = await b.acquireSlots(container, [{ scope: 'group:api', index: 0 }], { task: 'x', token: 1, runnerId: 'B' });
    expect('held' in theirs).toBe(true);
    const { result, t } = await measure(() =>
      Promise.all([
        a.acquireSlots(container, [{ scope: 'group:api', index: 1 }], holder('t1')),
        a.acquireSlots(container, [{ scope: 'group:api', index: 0 }], holder('t2')),
        a.acquireSlots(container, [{ scope: 'all', index: 0 }, { scope: 'group:api', index: 0 }], holder('t3')),
        a.acquireSlots(container, [{ scope: 'all', index: 1 }, { scope: 'group:api', index: 2 }], holder('t4')),
      ]),
    );
    const seen = JSON.stringify(Object.fromEntries(t));
    expect(result.map((r) => ('held' in r ? 'held' : r.taken.map((h) => `${h.scope}#${h.index}:${h.task}`).join()))).toEqual([
      'held',
      'group:api#0:x',
      'group:api#0:x',
      'held',
    ]);
    expect(t.get('insert pts_slots'), seen).toBe(1);
    // t3 took all#0 in the shared insert and gives it back (all or nothing); t2 took nothing and deletes nothing.
    expect(t.get('delete pts_slots'), seen).toBe(1);
    const held = await a.readSlots(container, [0, 1, 2].flatMap((index) => [{ scope: 'all', index }, { scope: 'group:api', index }]));
    expect(held.map((h) => `${h.scope}#${h.index}:${h.task}`).sort()).toEqual(['all#1:t4', 'group:api#0:x', 'group:api#1:t1', 'group:api#2:t4']);
    // Releases of one turn share one delete, each deleting its own acquisition only.
    const mine = result.filter((r) => 'held' in r).map((r) => r.held);
    const released = await measure(() => Promise.all(mine.map((h) => a.releaseSlots(h))));
    expect(released.t.get('delete pts_slots')).toBe(1);
    expect((await a.readSlots(container, [{ scope: 'group:api', index: 0 }])).map((h) => h.task)).toEqual(['x']);
    expect(await a.readSlots(container, [{ scope: 'all', index: 1 }, { scope: 'group:api', index: 1 }, { scope: 'group:api', index: 2 }])).toEqual([]);
  } finally {
    await other.close();
  }
}, 60_000);
