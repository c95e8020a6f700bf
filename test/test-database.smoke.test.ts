import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testMongoKind, testMongoUri, uriWithDb, useTestDatabase, type TestDatabase } from './support/database.js';

describe('test database', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await useTestDatabase();
  });

  afterAll(async () => {
    await db?.drop();
  });

  it('gets a server URI from the global setup', () => {
    expect(testMongoUri()).toMatch(/^mongodb(\+srv)?:\/\//);
    expect(['external', 'mongodb-memory-server', 'ferretdb']).toContain(testMongoKind());
    expect(process.env.PTS_TEST_MONGODB_URI).toBe(testMongoUri());
    expect(db.dbName).toMatch(/^pts_test_[0-9a-f]{12}$/);
    expect(db.uriWithDb).toBe(uriWithDb(db.uri, db.dbName));
  });

  it('uses a dedicated connection to its own database', () => {
    expect(db.connection.name).toBe(db.dbName);
    expect(db.connection.readyState).toBe(1);
  });

  it('inserts a document and reads it back', async () => {
    const col = db.connection.collection<{ _id: string; n: number; at: Date }>('smoke');
    const at = new Date('2024-01-02T03:04:05.678Z');
    await col.insertOne({ _id: 'one', n: 1, at });
    const doc = await col.findOne({ _id: 'one' });
    expect(doc).toEqual({ _id: 'one', n: 1, at });
  });

  it('rejects a duplicate _id with code 11000', async () => {
    const col = db.connection.collection<{ _id: string; n: number }>('dupes');
    await col.insertOne({ _id: 'same', n: 1 });
    await expect(col.insertOne({ _id: 'same', n: 2 })).rejects.toMatchObject({ code: 11000 });
    expect(await col.findOne({ _id: 'same' })).toEqual({ _id: 'same', n: 1 });
  });

  it('drops its database', async () => {
    const other = await useTestDatabase();
    await other.connection.collection('x').insertOne({ a: 1 });
    const admin = db.connection.getClient().db().admin();
    const names = async () => (await admin.listDatabases()).databases.map((d) => d.name);
    expect(await names()).toContain(other.dbName);
    await other.drop();
    await other.drop(); // idempotent
    expect(await names()).not.toContain(other.dbName);
  });
});

describe('uriWithDb', () => {
  it('adds, replaces and keeps the right parts', () => {
    expect(uriWithDb('mongodb://127.0.0.1:27017/', 'd')).toBe('mongodb://127.0.0.1:27017/d');
    expect(uriWithDb('mongodb://127.0.0.1:27017', 'd')).toBe('mongodb://127.0.0.1:27017/d');
    expect(uriWithDb('mongodb://h:1/old?retryWrites=false', 'd')).toBe('mongodb://h:1/d?retryWrites=false');
    expect(uriWithDb('mongodb://h1:1,h2:2/?replicaSet=rs', 'd')).toBe('mongodb://h1:1,h2:2/d?replicaSet=rs');
    expect(uriWithDb('mongodb://h1:1,h2:2?replicaSet=rs', 'd')).toBe('mongodb://h1:1,h2:2/d?replicaSet=rs');
    expect(uriWithDb('mongodb+srv://u:p%40w@cluster.example.net/', 'd')).toBe(
      'mongodb+srv://u:p%40w@cluster.example.net/d?authSource=admin',
    );
    expect(uriWithDb('mongodb://u:p@h/app', 'd')).toBe('mongodb://u:p@h/d?authSource=app');
    expect(uriWithDb('mongodb://u:p@h/app?authSource=x&w=majority', 'd')).toBe(
      'mongodb://u:p@h/d?authSource=x&w=majority',
    );
  });
});
