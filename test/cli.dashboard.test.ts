/**
 * `pts dashboard` as a real process against the real test server: it prints
 * its URL, serves the pages and `/metrics`, refuses a non-local host without
 * auth (exit 2), asks for credentials with --basic-auth, and stops on SIGTERM
 * with exit 0.
 */
import { expect, it } from 'vitest';
import { defineContainer, Runner } from '../src/index.js';
import { runPts } from './cli.support.js';
import { killChildrenAfterEach, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
killChildrenAfterEach();

it('serves the pages and /metrics at the URL it prints, and stops on SIGTERM with exit 0', async () => {
  await (await Runner.create({ connection: db().connection, container: defineContainer('cli-seen').task('a', async () => 1) })).run();
  const child = spawnTsChild('src/cli/main.ts', ['dashboard', '--port', '0'], { MONGODB_URI: db().uriWithDb });
  const line = await child.waitForLine(/^Dashboard: http:\/\/127\.0\.0\.1:\d+\/$/, 60_000);
  const url = line.slice('Dashboard: '.length);
  const list = (await (await fetch(new URL('api/containers', url))).json()) as { rows: Array<{ name: string; status: string }> };
  expect(list.rows).toEqual([expect.objectContaining({ name: 'cli-seen', status: 'succeeded' })]);
  expect((await fetch(url)).headers.get('content-type')).toMatch(/^text\/html/);
  const metrics = await (await fetch(new URL('metrics', url))).text();
  expect(metrics).toMatch(/^# HELP pts_tasks_runner_lost /m);
  expect(await child.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  expect(child.lines).toContain('Dashboard stopped.');
}, 120_000);

it('refuses another host without --basic-auth (exit 2), and asks for credentials with it', async () => {
  const refused = await runPts(db().uriWithDb, ['dashboard', '--host', '0.0.0.0', '--port', '0']);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without --basic-auth/);
  const bad = await runPts(db().uriWithDb, ['dashboard', '--basic-auth', 'nocolon']);
  expect(bad.code).toBe(2);

  const child = spawnTsChild('src/cli/main.ts', ['dashboard', '--port', '0', '--basic-auth', 'ops:pw'], { MONGODB_URI: db().uriWithDb });
  const url = (await child.waitForLine(/^Dashboard: /, 60_000)).slice('Dashboard: '.length);
  expect((await fetch(url)).status).toBe(401);
  expect((await fetch(url, { headers: { authorization: `Basic ${Buffer.from('ops:pw').toString('base64')}` } })).status).toBe(200);
  await child.kill('SIGTERM');
}, 120_000);
