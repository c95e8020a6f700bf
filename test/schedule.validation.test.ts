import { describe, expect, it } from 'vitest';
import {
  CycleError,
  defineContainer,
  defineSchedule,
  InvalidCronError,
  InvalidOptionError,
  InvalidScheduleError,
  InvalidSlotDefinitionError,
  Scheduler,
  UnknownTimezoneError,
  ValidationError,
  type ContainerDefinition,
} from '../src/index.js';
import { databasePerFile } from './support/database.js';
import { collectErrors, slotLabel, testClock } from './support/schedule.js';

const db = databasePerFile();
const base = { name: 'v', cron: '0 * * * *', container: (slot: Date) => defineContainer(`v-${slotLabel(slot)}`).task('t', () => 1) };

/** Collection names of the test database that hold schedule data, with their document counts. */
async function scheduleDocs(): Promise<Record<string, number>> {
  const d = db().connection.db!;
  const names = (await d.listCollections().toArray()).map((c) => c.name).filter((n) => n.includes('schedule') || n.endsWith('_containers'));
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, await d.collection(n).countDocuments()] as const)));
}

describe('schedule validation, before anything is written', () => {
  it('an invalid cron expression is an InvalidCronError', () => {
    for (const cron of ['every hour', '61 * * * *', '* * *', '0 0 30 2 *']) {
      const error = (() => {
        try {
          defineSchedule({ ...base, cron });
        } catch (e) {
          return e;
        }
      })();
      expect(error, cron).toBeInstanceOf(InvalidCronError);
      expect(error).toBeInstanceOf(InvalidScheduleError);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as InvalidCronError).code).toBe('PTS_INVALID_CRON');
      expect((error as Error).message).toContain(cron);
    }
  });

  it('an unknown time zone is an UnknownTimezoneError', () => {
    expect(() => defineSchedule({ ...base, timezone: 'Mars/Olympus_Mons' })).toThrow(UnknownTimezoneError);
    expect(() => defineSchedule({ ...base, timezone: 'Europe/Berlin' })).not.toThrow();
  });

  it('bad policies, names and runner options are typed errors naming the option', () => {
    expect(() => defineSchedule({ ...base, overlap: 'sometimes' as never })).toThrow(/overlap/);
    expect(() => defineSchedule({ ...base, catchUp: 'most' as never })).toThrow(InvalidScheduleError);
    expect(() => defineSchedule({ ...base, catchUpLimit: 0 })).toThrow(/catchUpLimit/);
    expect(() => defineSchedule({ ...base, name: 'a.b' })).toThrow(InvalidScheduleError);
    expect(() => defineSchedule({ ...base, name: 'a@b' })).toThrow(InvalidScheduleError);
    expect(() => defineSchedule({ ...base, container: undefined as never })).toThrow(/container/);
    expect(() => defineSchedule({ ...base, runner: { concurrency: 0 } })).toThrow(InvalidOptionError);
  });

  it("catchUp 'all' with overlap 'skip' is refused; catchUp 'all' alone queues its slots", () => {
    // Caught-up slots are due together: under skip all but the first would be skipped (2 of 24 ran).
    expect(() => defineSchedule({ ...base, catchUp: 'all', overlap: 'skip' })).toThrow(/overlap 'queue'/);
    expect(() => defineSchedule({ ...base, catchUp: 'all', overlap: 'skip' })).toThrow(InvalidScheduleError);
    expect(defineSchedule({ ...base, catchUp: 'all' }).overlap).toBe('queue');
    expect(defineSchedule({ ...base, catchUp: 'all', overlap: 'parallel' }).overlap).toBe('parallel');
    expect(defineSchedule({ ...base }).overlap).toBe('skip');
  });

  it('Scheduler.create rejects duplicate schedule names before touching the database', async () => {
    const s = defineSchedule(base);
    await expect(Scheduler.create({ connection: db().connection, schedules: [s, s] })).rejects.toThrow(InvalidOptionError);
    await expect(Scheduler.create({ connection: db().connection, schedules: [] })).rejects.toThrow(InvalidOptionError);
    expect(await scheduleDocs()).toEqual({});
  });

  it('a factory that throws or returns an invalid definition writes nothing for that slot and the schedule goes on', async () => {
    const broken = new Map<string, () => unknown>([
      ['2026-11-29T14:00Z', () => ({ name: 'not-a-definition' })],
      ['2026-11-29T15:00Z', () => defineContainer('cyclic').task('a', { dependsOn: ['b' as never] }, () => 1).task('b', { dependsOn: ['a'] }, () => 2)],
      ['2026-11-29T16:00Z', () => {
        throw new Error('feed listing unavailable');
      }],
      ['2026-11-29T17:00Z', () => null],
    ]);
    const schedule = defineSchedule({
      name: 'factory',
      cron: '0 * * * *',
      container: (slot) => {
        const make = broken.get(slotLabel(slot));
        return (make ? make() : defineContainer(`factory-${slotLabel(slot)}`).task('t', () => 1)) as ContainerDefinition;
      },
      runner: { pollMs: 50 },
    });
    const clock = testClock('2026-11-29T13:30:00Z');
    const s = await Scheduler.create({ connection: db().connection, schedules: [schedule], clock });
    const errors = collectErrors(s);
    try {
      await s.tick();
      for (const h of ['14', '15', '16', '17']) {
        clock.set(`2026-11-29T${h}:00:00Z`);
        expect((await s.tick()).map((o) => o.action), h).toEqual(['invalid']);
      }
      expect(errors).toHaveLength(4);
      for (const e of errors) {
        expect(e.error).toBeInstanceOf(InvalidSlotDefinitionError);
        expect((e.error as InvalidSlotDefinitionError).code).toBe('PTS_INVALID_SLOT_DEFINITION');
        expect(e).toMatchObject({ schedule: 'factory', context: 'container factory' });
      }
      expect(errors[1]!.error.cause).toBeInstanceOf(CycleError);
      expect(errors[2]!.error.message).toContain('feed listing unavailable');
      expect(await s.slots('factory')).toEqual([]);
      const counts = await scheduleDocs();
      expect(counts.pts_schedule_slots).toBe(0);
      expect(counts.pts_containers).toBe(0);

      clock.set('2026-11-29T18:00:00Z');
      expect((await s.tick()).map((o) => o.action)).toEqual(['started']);
      expect((await s.slots('factory')).map((r) => r.container)).toEqual(['factory-2026-11-29T18:00Z']);
    } finally {
      await s.stop();
    }
  });
});
