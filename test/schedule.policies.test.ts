import { afterEach, describe, expect, it } from 'vitest';
import { defineContainer, defineSchedule, Scheduler, type CatchUpPolicy, type OverlapPolicy } from '../src/index.js';
import { databasePerFile } from './support/database.js';
import { collectErrors, gates, nextEvent, slotLabel, testClock, type TestClock } from './support/schedule.js';

const db = databasePerFile();
const schedulers: Scheduler[] = [];
afterEach(async () => {
  await Promise.all(schedulers.splice(0).map((s) => s.stop()));
});

/** An hourly schedule whose one task logs its start and finish and holds until its gate opens. */
function setup(name: string, overlap: OverlapPolicy, catchUp: CatchUpPolicy, extra: { catchUpLimit?: number } = {}) {
  const log: string[] = [];
  const g = gates();
  const schedule = defineSchedule({
    name,
    cron: '0 * * * *',
    timezone: 'UTC',
    overlap,
    catchUp,
    ...extra,
    runner: { pollMs: 50 },
    container: (slot) =>
      defineContainer(`${name}-${slotLabel(slot)}`).task('work', async () => {
        log.push(`start ${slotLabel(slot)}`);
        await g.wait(slotLabel(slot));
        log.push(`finish ${slotLabel(slot)}`);
      }),
  });
  const open = async (clock: TestClock) => {
    const s = await Scheduler.create({ connection: db().connection, schedules: [schedule], clock });
    schedulers.push(s);
    collectErrors(s);
    return s;
  };
  return { log, g, open };
}

const states = async (s: Scheduler, name: string) =>
  Object.fromEntries((await s.slots(name)).map((r) => [slotLabel(r.slot), r.state]));

describe('overlap', () => {
  it('skip: a slot whose previous container still runs is recorded as skipped, with the reason', async () => {
    const { log, g, open } = setup('skip', 'skip', 'latest');
    const clock = testClock('2026-11-29T13:30:00Z');
    const s = await open(clock);
    expect(await s.tick()).toEqual([]); // first start: the past (13:00) is not backfilled
    clock.set('2026-11-29T14:00:00Z');
    const started14 = nextEvent(s, 'slot:started');
    expect((await s.tick()).map((o) => o.action)).toEqual(['started']);
    await started14;
    clock.set('2026-11-29T15:00:00Z');
    const [skipped] = await s.tick();
    expect(skipped).toMatchObject({ action: 'skipped', container: 'skip-2026-11-29T15:00Z' });
    expect(skipped!.reason).toContain('2026-11-29T14:00:00.000Z');
    const [record15] = (await s.slots('skip')).filter((r) => slotLabel(r.slot) === '2026-11-29T15:00Z');
    expect(record15).toMatchObject({ state: 'skipped', container: 'skip-2026-11-29T15:00Z' });
    expect(record15!.reason).toContain('still running');

    const done14 = nextEvent(s, 'slot:completed');
    g.release('2026-11-29T14:00Z');
    expect(await done14).toMatchObject({ container: 'skip-2026-11-29T14:00Z', status: 'succeeded' });
    clock.set('2026-11-29T16:00:01Z');
    const done16 = nextEvent(s, 'slot:completed');
    g.release('2026-11-29T16:00Z');
    expect((await s.tick()).map((o) => o.action)).toEqual(['started']);
    await done16;
    expect(log).toEqual(['start 2026-11-29T14:00Z', 'finish 2026-11-29T14:00Z', 'start 2026-11-29T16:00Z', 'finish 2026-11-29T16:00Z']);
    expect(await states(s, 'skip')).toEqual({
      '2026-11-29T14:00Z': 'succeeded',
      '2026-11-29T15:00Z': 'skipped',
      '2026-11-29T16:00Z': 'succeeded',
    });
  });

  it('queue: overlapping slots wait and then run one after another, in slot order', async () => {
    const { log, g, open } = setup('queue', 'queue', 'latest');
    const clock = testClock('2026-11-29T13:30:00Z');
    const s = await open(clock);
    await s.tick();
    for (const [at, action] of [
      ['2026-11-29T14:00:00Z', 'started'],
      ['2026-11-29T15:00:00Z', 'queued'],
      ['2026-11-29T16:00:00Z', 'queued'],
    ] as const) {
      clock.set(at);
      expect((await s.tick()).map((o) => o.action)).toEqual([action]);
    }
    expect(await states(s, 'queue')).toEqual({
      '2026-11-29T14:00Z': 'started',
      '2026-11-29T15:00Z': 'queued',
      '2026-11-29T16:00Z': 'queued',
    });
    const started15 = nextEvent(s, 'slot:started', (e) => e.container === 'queue-2026-11-29T15:00Z');
    g.release('2026-11-29T14:00Z');
    await started15; // started by the 14:00 container's end, without a tick
    const started16 = nextEvent(s, 'slot:started', (e) => e.container === 'queue-2026-11-29T16:00Z');
    const done16 = nextEvent(s, 'slot:completed', (e) => e.container === 'queue-2026-11-29T16:00Z');
    g.release('2026-11-29T16:00Z'); // opened early: 16:00 must still wait for 15:00
    await new Promise((r) => setTimeout(r, 300));
    expect(log).not.toContain('start 2026-11-29T16:00Z');
    g.release('2026-11-29T15:00Z');
    await started16;
    await done16;
    expect(log).toEqual([
      'start 2026-11-29T14:00Z',
      'finish 2026-11-29T14:00Z',
      'start 2026-11-29T15:00Z',
      'finish 2026-11-29T15:00Z',
      'start 2026-11-29T16:00Z',
      'finish 2026-11-29T16:00Z',
    ]);
    expect(Object.values(await states(s, 'queue'))).toEqual(['succeeded', 'succeeded', 'succeeded']);
  });

  it('parallel: a slot starts while the previous one still runs', async () => {
    const { log, g, open } = setup('parallel', 'parallel', 'latest');
    const clock = testClock('2026-11-29T13:30:00Z');
    const s = await open(clock);
    await s.tick();
    const both = Promise.all([
      nextEvent(s, 'slot:started', (e) => e.container.endsWith('14:00Z')),
      nextEvent(s, 'slot:started', (e) => e.container.endsWith('15:00Z')),
    ]);
    clock.set('2026-11-29T14:00:00Z');
    await s.tick();
    clock.set('2026-11-29T15:00:00Z');
    expect((await s.tick()).map((o) => o.action)).toEqual(['started']);
    await both;
    await expect.poll(() => log.length, { timeout: 20_000 }).toBe(2);
    expect([...log].sort()).toEqual(['start 2026-11-29T14:00Z', 'start 2026-11-29T15:00Z']); // both running at once
    const done = Promise.all(['14:00Z', '15:00Z'].map((t) => nextEvent(s, 'slot:completed', (e) => e.container.endsWith(t))));
    g.release('2026-11-29T15:00Z');
    g.release('2026-11-29T14:00Z');
    await done;
    expect(Object.values(await states(s, 'parallel'))).toEqual(['succeeded', 'succeeded']);
  });
});

describe('catch-up after a time with no scheduler', () => {
  /** A first scheduler sees 13:30 and stops; the next one starts at 17:30 (14:00-17:00 were missed). */
  async function missedFourSlots(name: string, catchUp: CatchUpPolicy, extra: { catchUpLimit?: number } = {}) {
    const ctx = setup(name, 'queue', catchUp, extra);
    const first = await ctx.open(testClock('2026-11-29T13:30:00Z'));
    await first.tick();
    await first.stop();
    const clock = testClock('2026-11-29T17:30:00Z');
    const s = await ctx.open(clock);
    for (const h of ['14', '15', '16', '17', '18']) ctx.g.release(`2026-11-29T${h}:00Z`);
    return { ...ctx, s, clock };
  }

  it('latest: only the most recent missed slot runs', async () => {
    const { s, log } = await missedFourSlots('latest', 'latest');
    const missed = nextEvent(s, 'slot:missed');
    const done = nextEvent(s, 'slot:completed');
    const outcomes = await s.tick();
    expect(outcomes.map((o) => `${o.action} ${slotLabel(o.slot)}`)).toEqual([
      'missed 2026-11-29T14:00Z',
      'missed 2026-11-29T15:00Z',
      'missed 2026-11-29T16:00Z',
      'started 2026-11-29T17:00Z',
    ]);
    expect((await missed).slots).toHaveLength(3);
    await done;
    expect(log).toEqual(['start 2026-11-29T17:00Z', 'finish 2026-11-29T17:00Z']);
    expect(await states(s, 'latest')).toEqual({ '2026-11-29T17:00Z': 'succeeded' });
    expect(await s.tick()).toEqual([]); // nothing is due twice
  });

  it('all: every missed slot runs, oldest first', async () => {
    const { s, log } = await missedFourSlots('all', 'all');
    const last = nextEvent(s, 'slot:completed', (e) => e.container.endsWith('17:00Z'));
    const outcomes = await s.tick();
    expect(outcomes.map((o) => o.action)).toEqual(['started', 'queued', 'queued', 'queued']);
    await last;
    expect(log.filter((l) => l.startsWith('start'))).toEqual(
      ['14', '15', '16', '17'].map((h) => `start 2026-11-29T${h}:00Z`),
    );
    expect(Object.values(await states(s, 'all'))).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
  });

  it('all, bounded: at most catchUpLimit missed slots run (the newest); the rest are reported', async () => {
    const { s, log } = await missedFourSlots('bounded', 'all', { catchUpLimit: 2 });
    const missed = nextEvent(s, 'slot:missed');
    const last = nextEvent(s, 'slot:completed', (e) => e.container.endsWith('17:00Z'));
    const outcomes = await s.tick();
    expect(outcomes.filter((o) => o.action !== 'missed').map((o) => slotLabel(o.slot))).toEqual(['2026-11-29T16:00Z', '2026-11-29T17:00Z']);
    expect((await missed).truncated).toBe(true);
    await last;
    expect(log.filter((l) => l.startsWith('start'))).toEqual(['start 2026-11-29T16:00Z', 'start 2026-11-29T17:00Z']);
  });

  it('none: missed slots are passed over; the next future slot runs', async () => {
    const { s, log, clock } = await missedFourSlots('none', 'none');
    const outcomes = await s.tick();
    expect(outcomes.map((o) => o.action)).toEqual(['missed', 'missed', 'missed', 'missed']);
    expect(await s.slots('none')).toEqual([]);
    clock.set('2026-11-29T18:00:00Z');
    const done = nextEvent(s, 'slot:completed');
    expect((await s.tick()).map((o) => o.action)).toEqual(['started']);
    await done;
    expect(log).toEqual(['start 2026-11-29T18:00Z', 'finish 2026-11-29T18:00Z']);
  });
});
