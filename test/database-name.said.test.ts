/**
 * A URI without a database name makes the driver use `test`. The runner and
 * the CLI say which database they use instead of reading `test` silently.
 */
import mongoose from 'mongoose';
import { afterAll, describe, expect, it } from 'vitest';
import { defineContainer, MongoStore, Runner } from '../src/index.js';
import { uriNamesDatabase } from '../src/store/mongo/database-name.js';
import { runPts } from './cli.support.js';
import { databasePerFile, randomDbName, testMongoUri } from './support/database.js';

const db = databasePerFile();
const container = `db-name-${randomDbName()}`;
const opened: mongoose.Connection[] = [];
afterAll(async () => {
  for (const c of opened) {
    await (await MongoStore.create(c)).deleteContainer(container).catch(() => undefined);
    await c.close();
  }
});

const tiny = () => defineContainer(container).task('only', async () => 1);

describe('Runner', () => {
  it('with a URI that names no database: runner.database is "test", one PTS_DEFAULT_DATABASE warning, and container:started names it', async () => {
    const connection = await mongoose.createConnection(testMongoUri()).asPromise();
    opened.push(connection);
    const warnings: Array<{ code?: string; message: string }> = [];
    const onWarning = (w: Error & { code?: string }) => warnings.push({ code: w.code, message: w.message });
    process.on('warning', onWarning);
    try {
      const runner = await Runner.create({ connection, container: tiny() });
      expect(runner.database).toBe('test');
      let started: unknown;
      runner.on('container:started', (e) => (started = e));
      expect((await runner.run()).status).toBe('succeeded');
      expect(started).toMatchObject({ container, database: 'test' });
      await new Promise((r) => setImmediate(r)); // warnings are delivered on the next tick
      const ours = warnings.filter((w) => w.code === 'PTS_DEFAULT_DATABASE');
      expect(ours).toHaveLength(1);
      expect(ours[0]!.message).toMatch(/names no database, so "test" is used/);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('with a database in the URI or in dbName: it is reported, and nothing warns', async () => {
    const viaUri = await Runner.create({ connection: db().connection, container: tiny() });
    expect(viaUri.database).toBe(db().dbName);
    const byOption = await mongoose.createConnection(testMongoUri(), { dbName: db().dbName }).asPromise();
    opened.push(byOption);
    expect((await MongoStore.create(byOption)).database).toEqual({ name: db().dbName, defaulted: false });
  });
});

describe('pts', () => {
  it('notes on stderr, in one line, that a URI without a database reads "test"', async () => {
    const r = await runPts(testMongoUri(), ['list']);
    expect(r.code).toBe(0);
    const notes = r.stderr.split('\n').filter((l) => l.includes('names no database'));
    expect(notes).toEqual(['pts: note: the MongoDB URI names no database, so "test" is used; name one in the URI (mongodb://host/<database>) or with mongoose\'s dbName option']);
  });

  it('says nothing extra when the URI names a database', async () => {
    const r = await runPts(db().uriWithDb, ['list']);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/database/);
  });
});

it('uriNamesDatabase reads the path, not the options', () => {
  expect(uriNamesDatabase('mongodb://h:1')).toBe(false);
  expect(uriNamesDatabase('mongodb://h:1/')).toBe(false);
  expect(uriNamesDatabase('mongodb://h:1/?authSource=admin')).toBe(false);
  expect(uriNamesDatabase('mongodb://u:p@h1,h2/jobs?replicaSet=r')).toBe(true);
  expect(uriNamesDatabase('mongodb+srv://cluster.example.com/jobs')).toBe(true);
});
