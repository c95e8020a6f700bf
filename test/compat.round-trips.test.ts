/**
 * The 0.0.1 API costs O(1) database commands per call, whatever the size of
 * the container: a call on one task reads that task (and its container's
 * document), never every task of the container. Measured with the driver's
 * command monitoring on a real server: commands sent, and documents returned
 * in reply cursors, for the 2nd and the 400th task of one container.
 */
import mongoose from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, CycleError, MongoStore, type CompatContainer } from '../src/index.js';
import { uniqueName } from './support/compat.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
let connection: mongoose.Connection;
/** Commands seen while recording, as `name collection`. */
let seen: string[] | null = null;
let docs = 0;

/** Command names that are not the API's own work (connection handshakes, sessions). */
const IGNORED = new Set(['hello', 'ismaster', 'isMaster', 'endSessions', 'ping', 'buildInfo', 'saslStart', 'saslContinue']);

beforeAll(async () => {
  connection = mongoose.createConnection(db().uriWithDb, { monitorCommands: true });
  await connection.asPromise();
  const client = connection.getClient();
  client.on('commandStarted', (e) => {
    if (seen === null || IGNORED.has(e.commandName)) return;
    const target = e.command[e.commandName];
    seen.push(`${e.commandName} ${typeof target === 'string' ? target : ''}`.trim());
  });
  client.on('commandSucceeded', (e) => {
    if (seen === null || IGNORED.has(e.commandName)) return;
    const cursor = (e.reply as { cursor?: { firstBatch?: unknown[]; nextBatch?: unknown[] } } | undefined)?.cursor;
    docs += (cursor?.firstBatch ?? cursor?.nextBatch ?? []).length;
  });
});
afterAll(() => connection?.close());

interface Cost {
  commands: number;
  docs: number;
  /** Which commands, for the failure message only. */
  list: string[];
}

/** Runs one API call and returns what it cost in commands and documents read. */
async function cost(call: () => Promise<unknown>): Promise<Cost> {
  seen = [];
  docs = 0;
  try {
    await call();
    return { commands: seen.length, docs, list: seen };
  } finally {
    seen = null;
  }
}

function expectSameCost(small: Cost, large: Cost, what: string): void {
  expect({ commands: large.commands, docs: large.docs }, `${what}: ${JSON.stringify({ small, large })}`).toEqual({
    commands: small.commands,
    docs: small.docs,
  });
}

/** The calls measured on the task `t<i>` when it is the (i+1)th task of the container. */
async function callsOn(c: CompatContainer, i: number): Promise<Record<string, Cost>> {
  const name = `t${i}`;
  const costs: Record<string, Cost> = {};
  costs.addTask = await cost(() => c.addTask(name, { taskData: { i }, statusText: 'queued' }));
  costs.addTaskWithDependency = await cost(() => c.addTask(`${name}-after`, { dependsOn: [name] }));
  costs.updateTask = await cost(() => c.updateTask(name, { percentageComplete: 50, statusText: 'halfway' }));
  costs.updateTaskRecord = await cost(() => c.updateTask(name, { taskData: { i, more: true }, maxRetries: 5 }));
  costs.getTask = await cost(async () => expect((await c.getTask(name))?.percentageComplete()).toBe(50));
  costs.getMissingTask = await cost(async () => expect(await c.getTask(`${name}-missing`)).toBeNull());
  costs.renameTask = await cost(() => c.updateTask(`${name}-after`, { name: `${name}-later` }));
  costs.deleteTask = await cost(async () => expect((await c.deleteTask(`${name}-later`))?.name()).toBe(`${name}-later`));
  costs.completeTask = await cost(() => c.updateTask(name, { isComplete: true }));
  return costs;
}

describe('0.0.1 API: commands per call do not grow with the container', () => {
  it('addTask, updateTask, getTask, deleteTask on the 2nd and the 400th task cost the same', { timeout: 600_000 }, async () => {
    const client = createClient({ connection });
    const c = await client.getOrCreateTaskContainer(uniqueName('round-trips'));
    await c.addTask('t0', null);
    const small = await callsOn(c, 1);
    for (let i = 2; i < 399; i++) await c.addTask(`t${i}`, { taskData: { i } });
    const large = await callsOn(c, 399);
    expect((await c.getTasks()).length).toBe(400);
    for (const what of Object.keys(small)) expectSameCost(small[what]!, large[what]!, what);
    // Not a whole-container read: a handful of commands, a handful of documents.
    for (const what of Object.keys(large)) expect(large[what]!.docs, what).toBeLessThan(20);
  });
});

describe('0.0.1 API: what the narrow reads cannot see is still checked', () => {
  it('a new or renamed task that closes a cycle through a dependency left dangling is a CycleError', async () => {
    const client = createClient({ connection });
    const store = await MongoStore.create(connection);
    const c = await client.getOrCreateTaskContainer(uniqueName('dangling'));
    await c.addTask('a', null);
    await c.addTask('b', { dependsOn: ['a'] });
    await c.addTask('x', null);
    // Deleted behind the API's back: b keeps depending on "a".
    expect(await store.deleteTask(c.name, 'a')).toBe(true);
    await expect(c.addTask('a', { dependsOn: ['b'] })).rejects.toBeInstanceOf(CycleError);
    await expect(c.updateTask('x', { name: 'a', dependsOn: ['b'] })).rejects.toBeInstanceOf(CycleError);
    expect((await c.getTasks()).map((t) => t.name())).toEqual(['b', 'x']);
    // Without the dependency that closes it, fine; b now waits for the renamed task.
    expect((await c.updateTask('x', { name: 'a' })).name()).toBe('a');
    await expect(c.updateTask('a', { dependsOn: ['b'] })).rejects.toBeInstanceOf(CycleError);
    expect((await c.getTask('b'))?.dependsOn()).toEqual(['a']);
  });

  it('a cancelled container is reopened by a change that leaves any task pending, as before', async () => {
    const client = createClient({ connection });
    const store = await MongoStore.create(connection);
    const c = await client.getOrCreateTaskContainer(uniqueName('cancelled'));
    await c.addTask('waiting', null);
    await c.addTask('done', { isComplete: true });

    // The changed task is not pending, another one is: reopened all the same.
    await store.requestCancel(c.name);
    await c.updateTask('done', { statusText: 'still done' });
    expect((await store.getContainer(c.name))?.cancelRequestedAt).toBeNull();

    // The changed task becomes pending.
    await c.updateTask('waiting', { hasFailed: true });
    await store.requestCancel(c.name);
    await c.updateTask('done', { isComplete: false });
    expect((await store.getContainer(c.name))?.cancelRequestedAt).toBeNull();

    // Nothing pending: the cancel stands.
    await c.updateTask('done', { isComplete: true });
    await store.requestCancel(c.name);
    await c.updateTask('done', { statusText: 'x' });
    expect((await store.getContainer(c.name))?.status).toBe('cancelled');
    await c.deleteTask('waiting');
    expect((await store.getContainer(c.name))?.cancelRequestedAt).toBeInstanceOf(Date);
    // A task added is work again.
    await c.addTask('more', null);
    expect((await store.getContainer(c.name))?.status).toBe('running');
    expect(c.isComplete()).toBe(false);
  });
});
