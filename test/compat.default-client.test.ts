import mongoose from 'mongoose';
import { afterAll, describe, expect, it } from 'vitest';
// Imported before mongoose.connect(), as 0.0.1 users require the package first.
import { client, MongoStore } from '../src/index.js';
import { uniqueName } from './support/compat.js';
import { randomDbName, testMongoUri, uriWithDb } from './support/database.js';
import { sleep } from './support/engine.js';

const dbName = randomDbName();
afterAll(async () => {
  await mongoose.connection.dropDatabase().catch(() => undefined);
  await mongoose.disconnect();
});

describe('the default client', () => {
  it('waits for mongoose.connect() when called before it, then uses the default connection', async () => {
    const name = uniqueName('default');
    const early = client.getOrCreateTaskContainer(name);
    await sleep(50);
    await mongoose.connect(uriWithDb(testMongoUri(), dbName));
    const container = await early;
    expect(container.name).toBe(name);
    await container.addTask('t', { taskData: 1 });

    // It really is mongoose's default connection, through the store's own prefixed models.
    const store = await MongoStore.create(mongoose.connection);
    expect((await store.loadSnapshot(name))?.tasks.map((t) => t.record.name)).toEqual(['t']);
    expect(mongoose.connection.db?.databaseName).toBe(dbName);
    expect(Object.keys(mongoose.models)).not.toContain('Task');
    expect(Object.keys(mongoose.models)).not.toContain('TaskContainer');
    expect(Object.keys(mongoose.connection.models)).not.toContain('Task');
    expect(Object.keys(mongoose.connection.models)).not.toContain('TaskContainer');
  });

  it('leaves the user free to register their own Task and TaskContainer models', async () => {
    const Task = mongoose.model('Task', new mongoose.Schema({ title: String }));
    const TaskContainer = mongoose.model('TaskContainer', new mongoose.Schema({ label: String }));
    await Task.create({ title: 'mine' });
    await TaskContainer.create({ label: 'mine' });
    const name = uniqueName('coexist');
    const c = await client.getOrCreateTaskContainer(name);
    await c.addTask('x', null);
    expect((await client.getTaskContainer(name))?.name).toBe(name);
    expect(await Task.countDocuments()).toBe(1);
    expect(await TaskContainer.countDocuments()).toBe(1);
  });
});
