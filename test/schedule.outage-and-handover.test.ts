import fs from 'node:fs';
import { expect, it } from 'vitest';
import { MongoScheduleStore } from '../src/index.js';
import { killChildrenAfterEach } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { scheduleLab } from './support/schedule-procs.js';

const db = databasePerFile();
killChildrenAfterEach();

it("after a 30 h outage, catchUp 'all' (overlap left to its default) runs the 24 newest missed slots, oldest first", async () => {
  const lab = scheduleLab(db);
  const common = { SCHEDULE: 'outage', CRON: '0 * * * *', CATCH_UP: 'all', CLOCK_FILE: lab.clockFile, CHUNKS: '1', CHUNK_MS: '10' };
  lab.setClock('2026-11-29T10:30:00Z');
  const before = lab.spawn('before', common);
  await before.waitForLine('ready', 60_000); // the schedule's head is at 10:30
  expect((await before.kill('SIGTERM')).code).toBe(0);

  lab.setClock('2026-11-30T16:30:00Z'); // 30 slots were missed: 2026-11-29T11:00 .. 2026-11-30T16:00
  const after = lab.spawn('after', common);
  await after.waitForLine('completed outage-2026-11-30T16:00:00Z succeeded', 170_000);
  const expected = Array.from({ length: 24 }, (_, i) => new Date(Date.parse('2026-11-29T17:00:00Z') + i * 3_600_000).toISOString());
  const completed = lab.effects('completed').map((e) => e.slot);
  expect(completed).toEqual(expected); // every one of them, one after another, oldest first
  // The 6 oldest, beyond catchUpLimit (24), are reported as passed over (not enumerated: truncated).
  expect(lab.effects('missed').map((e) => e.truncated)).toEqual([true]);
  expect(lab.effects('skipped')).toEqual([]);
  const slots = await (await MongoScheduleStore.create(db().connection)).listSlots('outage');
  expect(slots.map((s) => [s.slot.toISOString(), s.state])).toEqual(expected.map((slot) => [slot, 'succeeded']));
}, 200_000);

it('a graceful stop hands its slot over at once: another scheduler continues it at its next tick, not at its next recovery pass', async () => {
  const lab = scheduleLab(db);
  const common = { SCHEDULE: 'handover', CRON: '0 * * * *', CLOCK_FILE: lab.clockFile, CHUNKS: '60', CHUNK_MS: '150' };
  lab.setClock('2026-11-29T09:30:00Z');
  const a = lab.spawn('A', common);
  await a.waitForLine('ready', 60_000);
  // B runs with the default recoverMs (60 s); its clock stays at 09:30 until A holds the 10:00 slot.
  const b = lab.spawn('B', { ...common, FROZEN_UNTIL_FILE: lab.file('go') });
  await b.waitForLine('ready', 60_000);
  lab.setClock('2026-11-29T10:00:05Z');
  await a.waitForLine('started handover-2026-11-29T10:00:00Z resumed=false', 60_000);
  fs.writeFileSync(lab.file('go'), '');
  await a.waitForLine('chunk 3', 60_000);
  expect((await a.kill('SIGTERM')).code).toBe(0);
  const stoppedAt = lab.effects('stopped')[0]!.realMs;

  await b.waitForLine('started handover-2026-11-29T10:00:00Z resumed=true', 60_000);
  const tookOver = lab.effects('started').find((e) => e.proc === 'B')!.realMs;
  console.log(`graceful stop: B continued the slot ${Math.round(tookOver - stoppedAt)} ms after A stopped`);
  expect(tookOver - stoppedAt).toBeLessThan(20_000); // a tick (100 ms here, 1 s by default), far below recoverMs
  await b.waitForLine('completed handover-2026-11-29T10:00:00Z succeeded', 90_000);
  const chunks = lab.effects('chunk');
  const lastByA = Math.max(...chunks.filter((c) => c.proc === 'A').map((c) => c.chunk!));
  const byB = chunks.filter((c) => c.proc === 'B').map((c) => c.chunk!);
  expect(byB[0]).toBeLessThanOrEqual(lastByA + 1); // continued from A's checkpoint
  expect(byB.at(-1)).toBe(60);
}, 200_000);
