import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { defineContainer, defineSchedule, getContainerStatus, MongoScheduleStore, Scheduler } from '../src/index.js';
import { killChildrenAfterEach, makeTempDir, sideEffectLog, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { collectErrors, nextEvent, slotLabel, testClock, type TestClock } from './support/schedule.js';

const db = databasePerFile();
killChildrenAfterEach();
const schedulers: Scheduler[] = [];
afterEach(async () => {
  await Promise.all(schedulers.splice(0).map((s) => s.stop()));
});

it('a scheduler stopped and started again neither repeats a slot nor forgets one', async () => {
  const ran: string[] = [];
  const schedule = defineSchedule({
    name: 'restart',
    cron: '0 * * * *',
    catchUp: 'all',
    overlap: 'queue',
    runner: { pollMs: 50 },
    container: (slot) => defineContainer(`restart-${slotLabel(slot)}`).task('work', () => void ran.push(slotLabel(slot))),
  });
  const open = async (clock: TestClock) => {
    const s = await Scheduler.create({ connection: db().connection, schedules: [schedule], clock, tickMs: 50 });
    schedulers.push(s);
    collectErrors(s);
    await s.start();
    return s;
  };
  const clock = testClock('2026-11-29T13:30:00Z');
  const first = await open(clock);
  await first.tick();
  clock.set('2026-11-29T14:00:00Z');
  const done14 = nextEvent(first, 'slot:completed');
  await first.tick();
  await done14;
  await first.stop();

  // Same instant, new process: 14:00 is not run again.
  const second = await open(clock);
  expect(await second.tick()).toEqual([]);
  clock.set('2026-11-29T15:00:00Z');
  const done15 = nextEvent(second, 'slot:completed');
  await second.tick();
  await done15;
  await second.stop();

  // Down from 15:00 to 17:30: 16:00 and 17:00 are not forgotten.
  clock.set('2026-11-29T17:30:00Z');
  const third = await open(clock);
  const done17 = nextEvent(third, 'slot:completed', (e) => e.container.endsWith('17:00Z'));
  expect((await third.tick()).map((o) => `${o.action} ${slotLabel(o.slot)}`)).toEqual([
    'started 2026-11-29T16:00Z',
    'queued 2026-11-29T17:00Z',
  ]);
  await done17;
  expect(ran).toEqual(['14', '15', '16', '17'].map((h) => `2026-11-29T${h}:00Z`));
  const slots = await third.slots('restart');
  expect(slots.map((s) => [slotLabel(s.slot), s.state])).toEqual(ran.map((l) => [l, 'succeeded']));
});

it('a scheduler killed mid-slot is resumed by the next one: the same container finishes from its checkpoint', async () => {
  const dir = makeTempDir();
  const log = sideEffectLog<{ proc: string; event: string; container?: string; chunk?: number; task?: string; resumed?: boolean }>(
    path.join(dir, 'effects.jsonl'),
  );
  const env = {
    MONGODB_URI: db().uriWithDb,
    LOG: log.path,
    MODE: 'resume',
    START_AT: '2026-11-29T13:30:00Z',
    SLOTS: '2026-11-29T14:00:05Z',
  };
  const container = 'resume-2026-11-29T14:00Z';
  const a = spawnTsChild('test/fixtures/scheduler-child.ts', [], { ...env, NAME: 'A', HOLD_AFTER_CHUNK: '4' }, { label: 'scheduler-A' });
  await a.waitForLine('outcome started 2026-11-29T14:00Z', 60_000);
  await a.waitForLine('holding', 60_000); // A checkpointed chunk 4 and waits to be killed
  await a.kill('SIGKILL');
  const beforeKill = log.read().filter((e) => e.event === 'chunk').map((e) => e.chunk!);
  expect(Math.max(...beforeKill)).toBeLessThan(12);
  expect((await getContainerStatus(container, { connection: db().connection })).status).toBe('running');

  const b = spawnTsChild('test/fixtures/scheduler-child.ts', [], { ...env, NAME: 'B' }, { label: 'scheduler-B' });
  await b.waitForLine(`slot-started ${container} resumed=true`, 60_000);
  await b.waitForLine(`slot-completed ${container} succeeded`, 60_000);
  expect((await b.waitForExit(30_000)).code).toBe(0);
  expect(b.lines).not.toContain('outcome started 2026-11-29T14:00Z'); // B's tick found the slot already claimed

  const effects = log.read();
  const byB = effects.filter((e) => e.proc === 'B' && e.event === 'chunk').map((e) => e.chunk!);
  // B continued after A's last checkpoint: no chunk before it ran again, none was skipped.
  expect(byB[0]).toBeGreaterThanOrEqual(Math.max(...beforeKill));
  expect(byB[0]).toBeLessThanOrEqual(Math.max(...beforeKill) + 1);
  expect(byB.at(-1)).toBe(12);
  expect(effects.filter((e) => e.event === 'task' && e.task === 'import')).toHaveLength(1);
  const slots = await (await MongoScheduleStore.create(db().connection)).listSlots('resume');
  expect(slots.map((s) => [s.container, s.state, s.claimedBy])).toEqual([[container, 'succeeded', 'A']]);
  expect((await getContainerStatus(container, { connection: db().connection })).status).toBe('succeeded');
}, 240_000);

it('a scheduler that keeps running takes over the slot of one that died mid-slot, without a restart', async () => {
  const dir = makeTempDir();
  const log = sideEffectLog<{ proc: string; event: string; container?: string; chunk?: number; task?: string; resumed?: boolean }>(
    path.join(dir, 'effects.jsonl'),
  );
  const go = path.join(dir, 'go');
  const env = {
    MONGODB_URI: db().uriWithDb,
    LOG: log.path,
    SCHEDULE: 'standby',
    START_AT: '2026-11-29T13:30:00Z',
    SLOTS: '2026-11-29T14:00:05Z',
    GO_FILE: go,
    RECOVER_MS: '500',
    HOLD_FILE: path.join(dir, 'holding'),
  };
  const container = 'standby-2026-11-29T14:00Z';
  // B runs first and stays up; A claims the slot; B finds it taken. Both check for orphaned slots
  // every 500 ms, so on a busy machine B may join the slot before A claimed its first task (a
  // container with nothing running yet looks orphaned; two runners on it are safe). Whichever
  // runs `fetch` holds after chunk 3 and is killed; the other one must finish the slot. Only one ever holds
  // (HOLD_FILE): under load B may take `fetch` over from a holding A whose lease lapsed, and must not hold too.
  const b = spawnTsChild('test/fixtures/scheduler-child.ts', [], { ...env, MODE: 'standby', NAME: 'B', HOLD_AFTER_CHUNK: '3' }, { label: 'scheduler-B' });
  await b.waitForLine('ready', 60_000);
  const a = spawnTsChild('test/fixtures/scheduler-child.ts', [], { ...env, MODE: 'resume', NAME: 'A', HOLD_AFTER_CHUNK: '3' }, { label: 'scheduler-A' });
  await a.waitForLine('outcome started 2026-11-29T14:00Z', 60_000);
  fs.writeFileSync(go, '');
  // B has seen the slot: its tick found it taken, or a recovery pass had already attached B's runner to it.
  const seen = await b.waitForLine((l) => l === 'outcome taken 2026-11-29T14:00Z' || l === `slot-started ${container} resumed=true`, 60_000);
  const attachedEarly = seen.startsWith('slot-started');
  const holder = await Promise.any([a, b].map((p) => p.waitForLine('holding', 60_000).then(() => p)));
  const survivor = holder === a ? b : a;
  await holder.kill('SIGKILL');

  // B took the slot over without a restart: by a recovery pass (A's own runner was attached from the start).
  if (survivor === b && !attachedEarly) await b.waitForLine(`slot-started ${container} resumed=true`, 60_000);
  await survivor.waitForLine(`slot-completed ${container} succeeded`, 60_000);
  expect((await survivor.waitForExit(30_000)).code).toBe(0);
  const effects = log.read();
  const survivorName = survivor === a ? 'A' : 'B';
  expect(effects.filter((e) => e.proc === survivorName && e.event === 'chunk').at(-1)?.chunk).toBe(12);
  expect(effects.filter((e) => e.event === 'task' && e.task === 'import')).toHaveLength(1);
  expect((await getContainerStatus(container, { connection: db().connection })).status).toBe('succeeded');
}, 240_000);
