import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { Ledger } from '../src/index.js';
import { killChildrenAfterEach, makeTempDir } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { scheduleLab } from './support/schedule-procs.js';

const db = databasePerFile();
killChildrenAfterEach();

/** Two scheduler processes, each with its own view of the clock so the test decides who claims which slot. */
function twoSlotsOnOneFile(schedule: string, extra: Record<string, string>) {
  const lab = scheduleLab(db);
  const clockA = lab.file('clock-a');
  const clockB = lab.file('clock-b');
  for (const f of [clockA, clockB]) fs.writeFileSync(f, '2026-11-29T09:30:00Z');
  const common = { SCHEDULE: schedule, CRON: '0 * * * *', OVERLAP: 'parallel', WORK: 'ledger', FILE_URL: `https://feed.example/${schedule}.tbz`, ...extra };
  const a = lab.spawn('A', { ...common, CLOCK_FILE: clockA });
  const b = lab.spawn('B', { ...common, CLOCK_FILE: clockB });
  return { lab, a, b, clockA, clockB };
}

const intervals = (effects: Array<{ event: string; container?: string; realMs: number }>) => {
  const starts = effects.filter((e) => e.event === 'ingest-start');
  return starts.map((s) => ({ container: s.container!, start: s.realMs, end: effects.find((e) => e.event === 'ingest-end' && e.container === s.container)?.realMs }));
};

it('two slots on one new file: the second waits for the first, finds the file done, and says so; it is ingested once', async () => {
  // A ingests until the test lets it finish, so B always meets the file busy, however slow the machine.
  const release = path.join(makeTempDir(), 'release');
  const { lab, a, b, clockA, clockB } = twoSlotsOnOneFile('feed', { LEDGER_WAIT: '1', INGEST_UNTIL_FILE: release });
  await Promise.all([a.waitForLine('ready', 60_000), b.waitForLine('ready', 60_000)]);
  fs.writeFileSync(clockA, '2026-11-29T10:00:05Z');
  await a.waitForLine('ingest-start feed-2026-11-29T10:00:00Z', 60_000);
  fs.writeFileSync(clockB, '2026-11-29T11:00:05Z'); // B sees 10:00 taken, and claims 11:00 while 10:00 still ingests
  await b.waitForLine('busy feed-2026-11-29T11:00:00Z held-by feed-2026-11-29T10:00:00Z', 60_000);
  fs.writeFileSync(release, '');
  await b.waitForLine('ingest-result feed-2026-11-29T11:00:00Z done', 60_000);
  await a.waitForLine('ingest-result feed-2026-11-29T10:00:00Z ran', 60_000);
  expect(intervals(lab.effects()).map((i) => i.container)).toEqual(['feed-2026-11-29T10:00:00Z']);
  const ledger = await Ledger.create({ connection: db().connection, name: 'files' });
  expect((await ledger.list()).map((e) => e.info)).toEqual([{ by: 'feed-2026-11-29T10:00:00Z' }]);
}, 180_000);

it('without waiting, the second slot skips the busy file at once and says who holds it', async () => {
  const release = path.join(makeTempDir(), 'release');
  const { a, b, clockA, clockB, lab } = twoSlotsOnOneFile('nowait', { INGEST_UNTIL_FILE: release });
  await Promise.all([a.waitForLine('ready', 60_000), b.waitForLine('ready', 60_000)]);
  fs.writeFileSync(clockA, '2026-11-29T10:00:05Z');
  await a.waitForLine('ingest-start nowait-2026-11-29T10:00:00Z', 60_000);
  fs.writeFileSync(clockB, '2026-11-29T11:00:05Z');
  await b.waitForLine('ingest-result nowait-2026-11-29T11:00:00Z busy', 60_000);
  fs.writeFileSync(release, '');
  await a.waitForLine('ingest-result nowait-2026-11-29T10:00:00Z ran', 60_000);
  expect(lab.effects('busy').map((e) => e.holder)).toEqual(['nowait-2026-11-29T10:00:00Z']);
  expect(intervals(lab.effects())).toHaveLength(1);
}, 180_000);

it("a claimer killed mid-ingest frees the file after its lease; the waiting slot ingests it, never both at once", async () => {
  const { a, b, clockA, clockB, lab } = twoSlotsOnOneFile('killed', { LEDGER_WAIT: '1', INGEST_MS: '20000', CLAIM_LEASE_MS: '3000' });
  await Promise.all([a.waitForLine('ready', 60_000), b.waitForLine('ready', 60_000)]);
  fs.writeFileSync(clockA, '2026-11-29T10:00:05Z');
  await a.waitForLine('ingest-start killed-2026-11-29T10:00:00Z', 60_000);
  fs.writeFileSync(clockB, '2026-11-29T11:00:05Z');
  await b.waitForLine('busy killed-2026-11-29T11:00:00Z', 60_000);
  await a.kill('SIGKILL');
  const killedAt = Date.now();
  await b.waitForLine('ingest-start killed-2026-11-29T11:00:00Z', 60_000);
  const [first, second] = intervals(lab.effects());
  expect(first!.end).toBeUndefined(); // killed mid-ingest
  expect(second!.start).toBeGreaterThanOrEqual(killedAt); // never two at once
  console.log(`ledger claim: freed ${Math.round(second!.start - killedAt)} ms after the claimer's SIGKILL (lease 3000 ms)`);
  await b.waitForLine('ingest-result killed-2026-11-29T11:00:00Z ran', 60_000);
}, 180_000);
