import fs from 'node:fs';
import { expect, it } from 'vitest';
import { MongoScheduleStore } from '../src/index.js';
import { killChildrenAfterEach } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { scheduleLab } from './support/schedule-procs.js';

const db = databasePerFile();
killChildrenAfterEach();
const HOUR = 3_600_000;

it("a scheduler whose machine clock jumps 3 h ahead neither runs a slot early nor skips the slots in between", async () => {
  const lab = scheduleLab(db);
  // A slot every 2 s on the real clock; the machine's wall clock jumps 3 h ahead mid-run.
  const a = lab.spawn('A', {
    SCHEDULE: 'jump',
    CRON: '*/2 * * * * *',
    OVERLAP: 'parallel',
    CHUNKS: '1',
    CHUNK_MS: '10',
    JUMP_FILE: lab.file('jump'),
    JUMP_MS: String(3 * HOUR),
  });
  await a.waitForLine('ready', 60_000);
  await expect.poll(() => lab.effects('claimed').length, { timeout: 60_000 }).toBeGreaterThanOrEqual(2);
  const jumpedAt = Date.now();
  fs.writeFileSync(lab.file('jump'), '');
  await expect.poll(() => lab.effects('claimed').filter((e) => e.realMs > jumpedAt + 500).length, { timeout: 60_000 }).toBeGreaterThanOrEqual(4);
  await a.kill('SIGKILL');

  const claims = lab.effects('claimed');
  // Never claimed before its time on the real (server) clock: the jumped wall clock is not read.
  for (const c of claims) expect(Date.parse(c.slot!), `${c.slot} claimed at ${new Date(c.realMs).toISOString()}`).toBeLessThanOrEqual(c.realMs + 1000);
  // No slot skipped: every 2 s from the first claim to the last, each once.
  const slots = [...new Set(claims.map((c) => Date.parse(c.slot!)))].sort((x, y) => x - y);
  expect(slots.length).toBe(claims.length);
  for (let i = 1; i < slots.length; i++) expect(slots[i]! - slots[i - 1]!, new Date(slots[i]!).toISOString()).toBe(2000);
  const head = await (await MongoScheduleStore.create(db().connection)).getHead('jump');
  expect(head!.cursor.getTime()).toBeLessThan(Date.now() + 60_000); // the shared cursor did not move 3 h ahead
}, 180_000);

it("a dead scheduler whose clock was 5 minutes ahead neither claims its slot early nor keeps it orphaned for 5 minutes", async () => {
  const lab = scheduleLab(db);
  // One slot, a few seconds from now (UTC fields: second minute hour day month).
  const slot = new Date(Math.ceil((Date.now() + 10_000) / 1000) * 1000);
  const cron = `${slot.getUTCSeconds()} ${slot.getUTCMinutes()} ${slot.getUTCHours()} ${slot.getUTCDate()} ${slot.getUTCMonth() + 1} *`;
  const common = { SCHEDULE: 'skew', CRON: cron, CHUNKS: '40', CHUNK_MS: '100' };
  const a = lab.spawn('A', { ...common, SKEW_MS: String(5 * 60_000) });
  await a.waitForLine('ready', 60_000);
  // B only recovers: its slot clock stays before the slot, so A is the one that claims it.
  lab.setClock('2026-01-01T00:00:00Z');
  const b = lab.spawn('B', { ...common, CLOCK_FILE: lab.clockFile, RECOVER_MS: '1000' });
  await b.waitForLine('ready', 60_000);

  await a.waitForLine(`claimed ${slot.toISOString()} started`, 60_000);
  const claim = lab.effects('claimed').find((e) => e.proc === 'A')!;
  expect(claim.realMs, 'claimed before the slot on the real clock').toBeGreaterThanOrEqual(slot.getTime() - 1000);
  await a.waitForLine('chunk 3', 60_000);
  const killedAt = Date.now();
  await a.kill('SIGKILL');

  await b.waitForLine(/^started skew-.* resumed=true$/, 120_000);
  const takeover = lab.effects('started').find((e) => e.proc === 'B')!;
  // Judged on the server's clock: about 2 missed heartbeats, not the 5 minutes A's written expiry says.
  console.log(`skewed dead holder: slot taken over ${takeover.realMs - killedAt} ms after the SIGKILL`);
  expect(takeover.realMs - killedAt).toBeLessThan(60_000);
  await b.waitForLine(/^completed skew-.* succeeded$/, 120_000);
  const slots = await (await MongoScheduleStore.create(db().connection)).listSlots('skew');
  expect(slots.map((s) => [s.slot.toISOString(), s.state, s.claimedBy])).toEqual([[slot.toISOString(), 'succeeded', 'A']]);
}, 180_000);
