/**
 * The EPF job on several machines: runner processes with separate work
 * folders (EPF_WORK_DIR) share one slot, one of them SIGKILLed mid-import;
 * and two slots meet on the same new files (ledger claims).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Ledger } from '../src/index.js';
import { startFixtureFeed, type FixtureFeed } from '../src/ingest/epf/fixture/server.js';
import { killChildrenAfterEach, makeTempDir, readJsonl, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { snapshotOf } from './support/engine.js';
import { EPF_FIXTURES } from './support/epf-job.js';
import { expectTablesAsGenerated } from './support/epf-tables.js';

const db = databasePerFile();
killChildrenAfterEach();

let feed: FixtureFeed;
beforeAll(async () => {
  feed = await startFixtureFeed({ dir: EPF_FIXTURES, layout: 'v5' });
});
afterAll(() => feed?.stop());

interface Effect {
  runner: string;
  event: string;
  task?: string;
  attempt?: number;
  recovered?: boolean;
  from?: string;
  message?: string;
  skipped?: boolean;
}

function startRunner(runner: string, container: string, dir: string, extra: Record<string, string> = {}) {
  const workDir = path.join(dir, `work-${runner}`);
  return spawnTsChild('test/fixtures/epf-runner-child.ts', [], {
    MONGODB_URI: db().uriWithDb,
    BASE_URL: feed.baseUrl,
    USERNAME: feed.username,
    PASSWORD: feed.password,
    WORK_DIR: workDir,
    RUNNER: runner,
    CONTAINER: container,
    LOG: path.join(dir, 'effects.jsonl'),
    ...extra,
  });
}

/** The ledger's entries: one per file of the feed, none twice. */
async function expectEachFileRecordedOnce(): Promise<Array<{ url: string; info: unknown }>> {
  const entries = await (await Ledger.create({ connection: db().connection, name: 'epf' })).list();
  const urls = entries.map((e) => e.url);
  expect(new Set(urls).size).toBe(urls.length);
  expect(urls.length).toBe(feed.manifest.files.length);
  return entries;
}

const fileOf = (task: string) => task.slice(task.indexOf(':') + 1);

it('two runner processes with separate work folders ingest one slot; one is SIGKILLed mid-import; tables exact, no file ingested twice', async () => {
  const dir = makeTempDir();
  const container = 'epf-2026-12-06T10:00Z';
  const go = path.join(dir, 'go');
  const a = startRunner('A', container, dir, { GO_FILE: go });
  const b = startRunner('B', container, dir, { GO_FILE: go });
  await Promise.all([a.waitForLine('ready', 60_000), b.waitForLine('ready', 60_000)]);
  fs.writeFileSync(go, 'go');
  const importing = await a.waitForLine(/^progress import:/, 300_000);
  await a.kill('SIGKILL');
  const killedImport = importing.split(' ')[1]!;
  const effectsAtKill = readJsonl<Effect>(path.join(dir, 'effects.jsonl'));
  await b.waitForLine('done succeeded', 400_000);

  await expectTablesAsGenerated(db(), feed);
  await expectEachFileRecordedOnce();
  const snapshot = await snapshotOf(db().connection, container);
  expect(snapshot.tasks.filter((t) => t.state.status !== 'succeeded').map((t) => t.record.name)).toEqual([]);
  const effects = readJsonl<Effect>(path.join(dir, 'effects.jsonl'));
  const publishes = effects.filter((e) => e.event === 'succeeded' && e.task!.startsWith('publish:')).map((e) => e.task);
  expect(new Set(publishes).size).toBe(publishes.length);

  // Until the kill, every file's steps ran on the runner that downloaded it, unless the other runner took the
  // file's key over (an affinity takeover: the holder showed nothing running for affinityWaitMs) or recovered a
  // step whose lease lapsed (both happen on a busy machine and are logged), and both runners downloaded.
  const runnersOf = new Map<string, Set<string>>();
  for (const e of effectsAtKill.filter((x) => x.event === 'started' && x.task!.includes(':'))) {
    runnersOf.set(fileOf(e.task!), (runnersOf.get(fileOf(e.task!)) ?? new Set()).add(e.runner));
  }
  const takenOver = new Set(effectsAtKill.filter((e) => e.event === 'takeover' || (e.event === 'started' && e.recovered)).map((e) => fileOf(e.task!)));
  for (const [file, runners] of runnersOf) if (!takenOver.has(file)) expect([...runners], file).toHaveLength(1);
  expect(new Set(effectsAtKill.filter((e) => e.event === 'started' && e.task!.startsWith('download:')).map((e) => e.runner))).toEqual(new Set(['A', 'B']));

  // The import A ran was taken over by B, which had none of A's bytes: it fetched and extracted the file again, then resumed.
  const resumed = effects.find((e) => e.runner === 'B' && e.event === 'started' && e.task === killedImport);
  expect(resumed, `${killedImport} taken over by B`).toMatchObject({ recovered: true });
  expect(resumed!.attempt).toBeGreaterThanOrEqual(2);
  const file = fileOf(killedImport);
  const warnings = effects.filter((e) => e.runner === 'B' && e.event === 'warn').map((e) => e.message!);
  expect(warnings.some((m) => m.includes('not in this work folder'))).toBe(true);
  // A file is fetched once per runner its steps ran on, plus once per step run again (a retry, or a recovery
  // after a lapsed lease, both of which happen on a busy machine): a small file has no download checkpoint,
  // and a step run again where the archive is gone fetches it again. Nothing else fetches a file twice.
  const reruns = new Map<string, number>();
  for (const e of effects.filter((x) => x.event === 'started' && x.task!.includes(':') && (x.recovered || (x.attempt ?? 1) > 1))) {
    reruns.set(fileOf(e.task!), (reruns.get(fileOf(e.task!)) ?? 0) + 1);
  }
  const sent = new Map<string, number>();
  for (const e of feed.accessLog()) if (e.method === 'GET' && e.path.endsWith('.tbz')) sent.set(e.path, (sent.get(e.path) ?? 0) + e.bytes);
  const finalRunners = new Map<string, Set<string>>();
  for (const e of effects.filter((x) => x.event === 'started' && x.task!.includes(':'))) {
    finalRunners.set(fileOf(e.task!), (finalRunners.get(fileOf(e.task!)) ?? new Set()).add(e.runner));
  }
  expect(finalRunners.get(file)).toEqual(new Set(['A', 'B']));
  console.log(
    `several machines: ${[...finalRunners.values()].filter((r) => r.size > 1).length} of ${finalRunners.size} files moved from A to B after the kill; ` +
      `${[...sent.values()].reduce((s, n) => s + n, 0)} archive bytes sent for ${feed.manifest.files.reduce((s, f) => s + f.size, 0)} bytes of archives`,
  );
  for (const f of feed.manifest.files) {
    const id = `${f.kind === 'full' ? 'full' : 'inc'}-${f.group}${f.date}-${path.basename(f.path, '.tbz')}`;
    expect(finalRunners.has(id), id).toBe(true);
    const fetches = finalRunners.get(id)!.size + (reruns.get(id) ?? 0);
    expect(sent.get(f.path), `${f.path}: fetched by ${[...finalRunners.get(id)!]}, ${reruns.get(id) ?? 0} steps run again`).toBeLessThanOrEqual(fetches * f.size);
  }
}, 600_000);

it('two slots on the same new files: each file is ingested by one slot; the other waits for it, skips it and says so', async () => {
  await db().connection.db!.dropDatabase();
  const dir = makeTempDir();
  const a = startRunner('A', 'epf-2026-12-06T11:00Z', dir);
  await a.waitForLine(/^started download:/, 120_000);
  const b = startRunner('B', 'epf-2026-12-06T12:00Z', dir);
  await Promise.all([a.waitForLine('done succeeded', 400_000), b.waitForLine('done succeeded', 400_000)]);

  await expectTablesAsGenerated(db(), feed);
  const entries = await expectEachFileRecordedOnce();
  const effects = readJsonl<Effect>(path.join(dir, 'effects.jsonl'));
  const waits = effects.filter((e) => e.event === 'warn' && /slot epf-\S+ is ingesting it; this slot waits/.test(e.message!));
  const skips = effects.filter((e) => e.event === 'warn' && /ingested by epf-\S+; skipped by this slot/.test(e.message!));
  expect(waits.length).toBeGreaterThan(0);
  expect(skips.length).toBeGreaterThan(0);
  // Each file was imported by one slot only (the other's import step found it done and skipped it).
  const imports = effects.filter((e) => e.event === 'succeeded' && e.task!.startsWith('import:') && !e.skipped);
  const importedBy = new Map<string, string[]>();
  for (const e of imports) importedBy.set(fileOf(e.task!), [...(importedBy.get(fileOf(e.task!)) ?? []), e.runner]);
  expect(importedBy.size).toBe(feed.manifest.files.length);
  for (const [file, runners] of importedBy) expect(runners, `${file} imported by`).toHaveLength(1);
  const recordedBy = new Map(entries.map((e) => [e.url, (e.info as { container: string }).container]));
  console.log(`two slots: ${waits.length} waits, ${skips.length} skips; files recorded by A's slot ${[...recordedBy.values()].filter((c) => c.endsWith('11:00Z')).length}, by B's ${[...recordedBy.values()].filter((c) => c.endsWith('12:00Z')).length}`);
}, 600_000);
