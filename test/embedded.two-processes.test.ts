/**
 * Several processes on one embedded data folder (two `npm run epf` with
 * their own work folders, as two machines would have): they share one
 * FerretDB, which outlives the process that started it while another still
 * uses it, and exits once the last one is gone. Two FerretDB processes on one
 * SQLite folder break it ("table already exists", "disk I/O error"), and a
 * process whose server died with its starter retried "got no reply" forever.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnTsChild } from './support/child.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-embedded-two-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('two processes on one embedded data folder', () => {
  it('started at the same moment share one server, the longer one outlives the other, and the server exits after both', async () => {
    const dataDir = path.join(tmp, 'data');
    const env = { MONGODB_URI: undefined, PTS_MONGOMS_DOWNLOAD: '0' };
    // a runs 4 short tasks; b runs 40 tasks of 150 ms, so it still works when a has stopped.
    const a = spawnTsChild('test/fixtures/embedded-user-child.ts', [dataDir, 'short', '4', '10'], env, { label: 'a' });
    const b = spawnTsChild('test/fixtures/embedded-user-child.ts', [dataDir, 'long', '40', '150'], env, { label: 'b' });
    const [exitA, exitB] = await Promise.all([a.waitForExit(180_000), b.waitForExit(180_000)]);
    expect(exitA, a.stderr).toEqual({ code: 0, signal: null });
    expect(exitB, b.stderr).toEqual({ code: 0, signal: null });
    const doneA = a.lines.find((l) => l.startsWith('done '))!.split(' ');
    const doneB = b.lines.find((l) => l.startsWith('done '))!.split(' ');
    expect(doneA[2]).toBe('succeeded');
    expect(doneB[2]).toBe('succeeded');
    expect(doneA[1]).toBe(doneB[1]); // one server
    const { pid } = JSON.parse(fs.readFileSync(path.join(dataDir, 'server.json'), 'utf8')) as { pid: number };
    expect(pid).not.toBe(a.pid);
    expect(pid).not.toBe(b.pid);
    const deadline = Date.now() + 60_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(alive(pid)).toBe(false);
  }, 300_000);
});
