import { afterEach, expect, it } from 'vitest';
import { defineContainer, defineSchedule, Scheduler, UnknownScheduleError } from '../src/index.js';
import { runPts } from './cli.support.js';
import { killChildrenAfterEach } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { collectErrors, nextEvent, testClock } from './support/schedule.js';
import { scheduleLab } from './support/schedule-procs.js';

const db = databasePerFile();
killChildrenAfterEach();
const schedulers: Scheduler[] = [];
afterEach(async () => {
  await Promise.all(schedulers.splice(0).map((s) => s.stop()));
});

it('a first start runs the current hour when triggered, says when the next slot fires, and a second trigger runs a manual slot', async () => {
  const ran: string[] = [];
  const schedule = defineSchedule({
    name: 'hourly',
    cron: '0 * * * *',
    overlap: 'parallel',
    runner: { pollMs: 50 },
    container: (slot) => defineContainer(`hourly-${slot.toISOString().slice(0, 19)}Z`).task('work', () => void ran.push(slot.toISOString())),
  });
  const clock = testClock('2026-11-29T13:30:12Z');
  const s = await Scheduler.create({ connection: db().connection, schedules: [schedule], clock });
  schedulers.push(s);
  collectErrors(s);
  expect(await s.tick()).toEqual([]); // a first start does not backfill 13:00 on its own
  expect((await s.nextFiring('hourly'))?.toISOString()).toBe('2026-11-29T14:00:00.000Z');

  const done13 = nextEvent(s, 'slot:completed');
  expect(await s.trigger('hourly')).toMatchObject({ action: 'started', slot: new Date('2026-11-29T13:00:00Z') });
  await done13;
  const doneManual = nextEvent(s, 'slot:completed');
  expect(await s.trigger('hourly')).toMatchObject({ action: 'started', slot: new Date('2026-11-29T13:30:12Z') });
  await doneManual;
  expect(ran).toEqual(['2026-11-29T13:00:00.000Z', '2026-11-29T13:30:12.000Z']);
  expect((await s.slots('hourly')).map((r) => [r.slot.toISOString(), r.state, r.manual])).toEqual([
    ['2026-11-29T13:00:00.000Z', 'succeeded', true],
    ['2026-11-29T13:30:12.000Z', 'succeeded', true],
  ]);
  await expect(s.trigger('nope')).rejects.toThrow(UnknownScheduleError);
});

it('pts schedules lists a running schedule with its next firing; pts schedules trigger runs the current slot in the running scheduler', async () => {
  const lab = scheduleLab(db);
  // Hourly on the real (server) clock: a first start leaves the current hour alone.
  const p = lab.spawn('A', { SCHEDULE: 'cli', CRON: '0 * * * *', CHUNKS: '1', CHUNK_MS: '10' });
  await p.waitForLine('ready', 60_000);
  const pts = (args: string[]) => runPts(db().uriWithDb, args);

  const listed = await pts(['schedules', '--json']);
  expect(listed.code, listed.stderr).toBe(0);
  const [report] = JSON.parse(listed.stdout) as Array<{ schedule: string; cron: string; nextFiring: string; lastSlots: unknown[] }>;
  const nextHour = new Date(Math.floor(Date.now() / 3_600_000 + 1) * 3_600_000);
  expect(report).toMatchObject({ schedule: 'cli', cron: '0 * * * *', lastSlots: [] });
  expect(Math.abs(Date.parse(report!.nextFiring) - nextHour.getTime())).toBeLessThanOrEqual(3_600_000); // an hour boundary ahead
  expect(Date.parse(report!.nextFiring) % 3_600_000).toBe(0);

  const currentHour = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000).toISOString();
  const triggered = await pts(['schedules', 'trigger', 'cli']);
  expect(triggered.code, triggered.stderr).toBe(0);
  expect(triggered.stdout).toContain(`slot ${currentHour}`);
  await p.waitForLine(/^completed cli-.* succeeded$/, 60_000);
  const text = await pts(['schedules']);
  expect(text.stdout).toMatch(/^cli {2}0 \* \* \* \* \(UTC\), overlap skip, catch-up latest {2}next /);
  expect(text.stdout).toContain(`${currentHour}  succeeded`);

  const unknown = await pts(['schedules', 'trigger', 'nope']);
  expect(unknown.code).toBe(3);
  expect(unknown.stderr).toContain('Unknown schedule "nope"');
}, 180_000);
