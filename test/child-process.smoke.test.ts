import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAllChildren, makeTempDir, readJsonl, sideEffectLog, spawnTsChild } from './support/child.js';
import { useTestDatabase, type TestDatabase } from './support/database.js';

const SCRIPT = 'test/support/fixtures/smoke-child.ts';

describe('spawnTsChild', () => {
  let db: TestDatabase;
  let dir: string;

  beforeAll(async () => {
    db = await useTestDatabase();
    dir = makeTempDir();
  });
  afterEach(killAllChildren);
  afterAll(async () => {
    await db?.drop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs a TypeScript child against the test database and SIGKILLs it', async () => {
    const log = sideEffectLog<{ event: string; i?: number; db?: string }>(path.join(dir, 'kill.jsonl'));
    const c = spawnTsChild(SCRIPT, [db.uriWithDb, log.path, 'hang'], { SMOKE_CHILD_TAG: 'tagged' }, { echoStderr: false });
    expect(await c.waitForLine(/^ready /)).toBe(`ready pid=${c.pid} db=${db.dbName}`);
    await c.waitForLine('step 2');
    await c.waitForLine('waiting');
    const exit = await c.kill();
    expect(exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(c.stderr).toContain('a line on stderr');
    expect(log.read()).toEqual([
      { event: 'connected', pid: c.pid, db: db.dbName },
      { event: 'step', i: 1 },
      { event: 'step', i: 2 },
      { event: 'step', i: 3 },
    ]);
    expect(log.count((r) => r.event === 'step')).toBe(3);
    const docs = await db.connection.collection('children').find({ pid: c.pid }).toArray();
    expect(docs.map((d) => d.env)).toEqual(['tagged']);
  });

  it('reports exit codes and rejects waits for lines that never come', async () => {
    const logPath = path.join(dir, 'exit.jsonl');
    const c = spawnTsChild(SCRIPT, [db.uriWithDb, logPath, 'exit'], {}, { echoStderr: false });
    await expect(c.waitForLine('never printed')).rejects.toThrow(/exited \(code 7\) before printing/);
    expect(await c.waitForExit()).toEqual({ code: 7, signal: null });
    expect(c.lines).toContain('step 3');
    expect(readJsonl(logPath)).toHaveLength(4);
  });
});

describe('readJsonl', () => {
  it('ignores a torn last line and a missing file', () => {
    const dir = makeTempDir();
    try {
      const file = path.join(dir, 'torn.jsonl');
      expect(readJsonl(file)).toEqual([]);
      fs.writeFileSync(file, '{"a":1}\n{"a":2}\n{"a":');
      expect(readJsonl(file)).toEqual([{ a: 1 }, { a: 2 }]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
