/**
 * `pts status --watch` as a real subprocess while the engine runs a container
 * in this process: live bars on a (pseudo-)terminal, JSON lines and plain text
 * otherwise; the watch ends by itself when the container finishes.
 */
import { describe, expect, it } from 'vitest';
import { defineContainer, NonRetryableError, Runner, type TaskHandler } from '../src/index.js';
import { startPtsInTerminal } from './cli.support.js';
import { spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { sleep } from './support/engine.js';

const db = databasePerFile();

const fast = { pollMs: 50, checkpointIntervalMs: 0 } as const;

/** A task that reports progress in `steps` steps of `stepMs`. */
function stepping(steps: number, stepMs: number): TaskHandler {
  return async (ctx) => {
    for (let i = 1; i <= steps; i++) {
      await sleep(stepMs);
      await ctx.progress(i / steps, `step ${i}/${steps}`);
    }
    return steps;
  };
}

describe('pts status --watch', () => {
  it('draws live bars on a terminal and prints JSON lines to a pipe, both ending with the container', async () => {
    // Tasks wait at 0% until both watchers show them running, so a slow start of the CLI cannot miss them.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const gated = (steps: number, stepMs: number): TaskHandler => {
      const body = stepping(steps, stepMs);
      return async (ctx) => (await gate, body(ctx));
    };
    const container = defineContainer('bars demo')
      .task('download-files', gated(8, 200))
      .task('resize-images', gated(8, 250))
      .task('publish', { dependsOn: ['download-files', 'resize-images'] }, stepping(2, 100));
    const run = (await Runner.create({ connection: db().connection, container, ...fast })).run();
    const args = ['status', 'bars demo', '--watch', '--interval', '200'];
    const tty = startPtsInTerminal(db().uriWithDb, args);
    const jsonl = spawnTsChild('src/cli/main.ts', [...args, '--json'], { MONGODB_URI: db().uriWithDb }, { echoStderr: false });
    await Promise.all([
      tty.waitForOutput(/ {2}download-files +░+ +0% {2}attempt 1[^]* {2}resize-images +░+ +0%/),
      jsonl.waitForLine((l) => l.includes('"status":"running","dependsOn":[],"attempt":1')),
    ]);
    open();
    const [ttyRes, jsonExit, result] = await Promise.all([tty.exited, jsonl.waitForExit(60_000), run]);
    expect(result.status).toBe('succeeded');

    // Terminal: cli-progress bars (cursor movement, bar characters), task names, final report.
    expect(ttyRes.code).toBe(0);
    expect(ttyRes.stdout).toContain('\u001b[');
    expect(ttyRes.stdout).toMatch(/ {2}download-files +█+░+ +\d+(\.\d)?% {2}attempt 1, \S+ - step \d\/8/);
    expect(ttyRes.stdout).toMatch(/ {2}resize-images +█+░+/);
    expect(ttyRes.stdout).toMatch(/bars demo +█{20} +100% {2}succeeded \| 3\/3 succeeded/);
    expect(ttyRes.stdout).toMatch(/Status: {4}succeeded\r?\n/);
    expect(ttyRes.stderr).toBe('');

    // Pipe + --json: one report per refresh, the last one final.
    expect(jsonExit).toEqual({ code: 0, signal: null });
    const reports = jsonl.lines.map((l) => JSON.parse(l) as { status: string; percentComplete: number; tasks: any[] });
    expect(reports.length).toBeGreaterThanOrEqual(3);
    expect(reports.at(-1)).toMatchObject({ status: 'succeeded', percentComplete: 100 });
    expect(reports.slice(0, -1).every((r) => r.status === 'running')).toBe(true);
    expect(reports.some((r) => r.tasks.some((t) => t.status === 'running' && t.percentComplete > 0 && t.percentComplete < 100))).toBe(true);
    const percents = reports.map((r) => r.percentComplete);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
  });

  it('prints plain snapshots without ANSI codes when stdout is not a terminal; exit 4 when the container fails', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const crunch = stepping(6, 200);
    const container = defineContainer('plain demo')
      .task('crunch', async (ctx) => (await gate, crunch(ctx)))
      .task('explode', { dependsOn: ['crunch'], retries: 0 }, async () => {
        throw new NonRetryableError('disk full');
      });
    const run = (await Runner.create({ connection: db().connection, container, ...fast })).run();
    const child = spawnTsChild('src/cli/main.ts', ['status', 'plain demo', '--watch', '--interval', '200'], { MONGODB_URI: db().uriWithDb }, {
      echoStderr: false,
    });
    await child.waitForLine(/^ {2}crunch 0% attempt 1/);
    open();
    const [exit, result] = await Promise.all([child.waitForExit(60_000), run]);
    const res = { code: exit.code, stdout: child.lines.join('\n'), stderr: child.stderr };
    expect(result.status).toBe('failed');
    expect(res.code).toBe(4);
    expect(res.stderr).toBe('');
    expect(res.stdout).not.toContain('\u001b');
    expect(res.stdout).toMatch(/^\[\d\d:\d\d:\d\d\] plain demo running \d+(\.\d)?% \| 0\/2 succeeded \(1 pending, 1 running\)/m);
    expect(res.stdout).toMatch(/^ {2}crunch \d+(\.\d)?% attempt 1, \S+ - step \d\/6$/m);
    expect(res.stdout).toMatch(/^\[\d\d:\d\d:\d\d\] plain demo failed 50% \| 1\/2 succeeded \(1 failed\)$/m);
    expect(res.stdout).toMatch(/^Status: {4}failed$/m);
    expect(res.stdout).toContain('last error (attempt 1): NonRetryableError: disk full');
  });
});
