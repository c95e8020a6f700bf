/**
 * `pts epf`'s live display in a real 100x15 terminal (tmux), checked against
 * the screen's content: it fits (a container line, the files that fit, an
 * aggregate line; no frozen copy of the container line), and a resumed run
 * draws it too. The fixture has 21 files, more than the terminal's rows.
 * `--fresh` on a terminal asks before it forgets anything.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureFeed, type FixtureFeed } from '../src/ingest/epf/fixture/server.js';
import { REPO_ROOT } from './support/child.js';
import { Ledger } from '../src/index.js';
import { databasePerFile } from './support/database.js';

const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const db = databasePerFile();
const freshDb = databasePerFile(); // the --fresh test must not see the other test's run go on
const FIXTURES = path.join(os.tmpdir(), 'pts-epf-fixtures');
const sessions: string[] = [];

const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8' });
const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** Starts `pts epf` in a detached 100x15 tmux session; returns its name. */
function startInTerminal(env: Record<string, string>, args: string[] = []): string {
  const name = `pts-epf-display-${process.pid}-${sessions.length}`;
  const vars = Object.entries(env).map(([k, v]) => `${k}=${quote(v)}`);
  const command = `cd ${quote(REPO_ROOT)} && exec env ${vars.join(' ')} ${quote(process.execPath)} --import ${quote(TSX)} src/cli/main.ts epf ${args.map(quote).join(' ')}`;
  tmux('new-session', '-d', '-s', name, '-x', '100', '-y', '15', command);
  tmux('set-option', '-t', name, 'remain-on-exit', 'on');
  sessions.push(name);
  return name;
}

const screen = (name: string) => tmux('capture-pane', '-p', '-t', name).replace(/\n$/, '').split('\n');
const panePid = (name: string) => Number(tmux('list-panes', '-t', name, '-F', '#{pane_pid}').trim());

async function waitForScreen(name: string, test: (lines: string[]) => boolean, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let last: string[] = [];
  while (Date.now() < deadline) {
    last = screen(name);
    if (test(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`screen never matched; last screen:\n${last.join('\n')}`);
}

async function waitFor(test: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What must hold on every screen while the job runs. */
function expectFits(lines: string[]): void {
  expect(lines.length).toBeLessThanOrEqual(15);
  for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(100);
  expect(lines.filter((l) => /container: \d+\/\S+ tasks/.test(l)), lines.join('\n')).toHaveLength(1);
  expect(lines.filter((l) => /files: \d+\/\d+ done/.test(l)), lines.join('\n')).toHaveLength(1);
}

describe('pts epf on a 100x15 terminal', () => {
  let feed: FixtureFeed;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-display-'));
  beforeAll(async () => {
    feed = await startFixtureFeed({ dir: FIXTURES, layout: 'v5', faults: { trickle: { bytesPerSecond: 8 * 1024 } } });
  });
  afterAll(async () => {
    for (const s of sessions) spawnSync('tmux', ['kill-session', '-t', s]);
    await feed?.stop();
  });

  it('fits the screen with an aggregate line, draws on resume, and shows finished files with their size', async () => {
    const env = {
      MONGODB_URI: db().uriWithDb,
      EPF_BASE_URL: feed.baseUrl,
      EPF_USERNAME: feed.username,
      EPF_PASSWORD: feed.password,
      EPF_WORK_DIR: workDir,
      EPF_DOWNLOAD_CHECKPOINT_BYTES: '4096',
      TERM: 'xterm-256color',
    };
    const first = startInTerminal(env);
    const running = await waitForScreen(first, (l) => l.some((x) => / download /.test(x)) && l.some((x) => /files: \d+\/21 done/.test(x)), 180_000);
    if (process.env.PTS_TEST_VERBOSE === '1') console.log(running.join('\n'));
    expectFits(running);
    expect(running.join('\n')).toMatch(/more not shown|waiting/); // 21 files do not fit in 15 rows
    // Several frames later it still fits, and the container line was not left behind.
    await new Promise((r) => setTimeout(r, 3_000));
    expectFits(screen(first));

    process.kill(panePid(first), 'SIGKILL');
    // The job ran as the pane's process: wait until tmux has seen it die.
    await waitFor(() => tmux('list-panes', '-t', first, '-F', '#{pane_dead}').trim() === '1', 60_000);
    const second = startInTerminal(env);
    const resumed = await waitForScreen(second, (l) => l.some((x) => /container: \d+\/\d+ tasks/.test(x)) && l.some((x) => /files: /.test(x)), 180_000);
    expect(resumed.join('\n')).toMatch(/resuming epf-\S+/);
    expectFits(resumed.filter((l) => !/^resuming|^database:|^feed:/.test(l)));
    const done = await waitForScreen(second, (l) => l.some((x) => /done \d+(\.\d)? (B|KB)/.test(x)), 400_000);
    expect(done.join('\n')).not.toMatch(/done 1 B\b/);
  }, 700_000);

  it('--fresh on a terminal asks first: "n" changes nothing, "y" forgets the ledger and starts over', async () => {
    const env = {
      MONGODB_URI: freshDb().uriWithDb,
      EPF_BASE_URL: feed.baseUrl,
      EPF_USERNAME: feed.username,
      EPF_PASSWORD: feed.password,
      EPF_WORK_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'pts-epf-fresh-')),
      TERM: 'xterm-256color',
    };
    const ledger = await Ledger.create({ connection: freshDb().connection, name: 'epf' });
    await ledger.record({ url: `${feed.baseUrl}not-a-real-file.tbz`, size: 1, checksum: 'c' });
    const before = (await ledger.list()).length;
    expect(before).toBeGreaterThan(0);

    const no = startInTerminal(env, ['--fresh']);
    await waitForScreen(no, (l) => l.some((x) => /Continue\? \[y\/N\]/.test(x)), 120_000);
    tmux('send-keys', '-t', no, 'n', 'Enter');
    await waitForScreen(no, (l) => l.some((x) => /--fresh not confirmed; nothing was changed/.test(x)), 60_000);
    expect((await ledger.list()).length).toBe(before);

    const yes = startInTerminal(env, ['--fresh']);
    await waitForScreen(yes, (l) => l.some((x) => /Continue\? \[y\/N\]/.test(x)), 120_000);
    tmux('send-keys', '-t', yes, 'y', 'Enter');
    await waitForScreen(yes, (l) => l.some((x) => new RegExp(`fresh start: forgot ${before} ingested file`).test(x)), 60_000);
    expect((await ledger.list()).filter((e) => e.url.includes('not-a-real-file'))).toEqual([]);
    process.kill(panePid(yes), 'SIGKILL');
  }, 300_000);
});
