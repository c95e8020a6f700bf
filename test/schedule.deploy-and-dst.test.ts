import { expect, it } from 'vitest';
import { getContainerStatus, MongoScheduleStore } from '../src/index.js';
import { killChildrenAfterEach } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { scheduleLab } from './support/schedule-procs.js';

const db = databasePerFile();
killChildrenAfterEach();

const states = async (schedule: string) =>
  (await (await MongoScheduleStore.create(db().connection)).listSlots(schedule)).map((s) => [s.slot.toISOString(), s.state, s.reason]);

it('a deploy mid-slot ends the old slot superseded, with an event, and skip runs the next slot', async () => {
  const lab = scheduleLab(db);
  const common = { SCHEDULE: 'deploy', CRON: '0 * * * *', OVERLAP: 'skip', CLOCK_FILE: lab.clockFile, CHUNKS: '40', CHUNK_MS: '150' };
  lab.setClock('2026-11-29T09:30:00Z');
  const v1 = lab.spawn('v1', { ...common, VERSION: '1' });
  await v1.waitForLine('ready', 60_000);
  lab.setClock('2026-11-29T10:00:05Z');
  await v1.waitForLine('started deploy-2026-11-29T10:00:00Z resumed=false', 60_000);
  await v1.waitForLine('chunk 3', 60_000);
  expect((await v1.kill('SIGTERM')).code).toBe(0); // the deploy stops the old version gracefully

  // The new version's factory adds a task: the old container cannot be resumed with it.
  const v2 = lab.spawn('v2', { ...common, VERSION: '2' });
  await v2.waitForLine('superseded deploy-2026-11-29T10:00:00Z', 60_000);
  const superseded = lab.effects('superseded')[0]!;
  expect(superseded.error).toContain('different definition');
  lab.setClock('2026-11-29T11:00:05Z');
  await v2.waitForLine('completed deploy-2026-11-29T11:00:00Z succeeded', 60_000);
  lab.setClock('2026-11-29T12:00:05Z');
  await v2.waitForLine('completed deploy-2026-11-29T12:00:00Z succeeded', 60_000);
  const rows = await states('deploy');
  expect(rows.map(([slot, state]) => [slot, state])).toEqual([
    ['2026-11-29T10:00:00.000Z', 'superseded'],
    ['2026-11-29T11:00:00.000Z', 'succeeded'],
    ['2026-11-29T12:00:00.000Z', 'succeeded'],
  ]);
  expect(rows[0]![2]).toContain('verify');
  expect(lab.effects('skipped')).toEqual([]);
  // The old container is left as it was (its checkpoint kept) for the user to finish or cancel.
  expect((await getContainerStatus('deploy-2026-11-29T10:00:00Z', { connection: db().connection })).status).toBe('running');
}, 180_000);

it('a factory naming containers by local hour meets the repeated hour of a DST change: the second slot fails, it never "succeeds" silently', async () => {
  const lab = scheduleLab(db);
  lab.setClock('2026-10-24T23:30:00Z');
  const p = lab.spawn('A', {
    SCHEDULE: 'dst',
    CRON: '0 * * * *',
    TIMEZONE: 'Europe/Berlin',
    NAMING: 'local-hour',
    OVERLAP: 'parallel',
    CLOCK_FILE: lab.clockFile,
    CHUNKS: '1',
    CHUNK_MS: '10',
  });
  await p.waitForLine('ready', 60_000);
  // 2026-10-25 in Berlin: 02:00 CEST is 00:00Z, and 02:00 CET (after the change) is 01:00Z.
  lab.setClock('2026-10-25T00:00:05Z');
  await p.waitForLine('completed dst-2026-10-25T02 succeeded', 60_000);
  lab.setClock('2026-10-25T01:00:05Z');
  await p.waitForLine('failed 2026-10-25T01:00:00.000Z', 60_000);
  lab.setClock('2026-10-25T02:00:05Z');
  await p.waitForLine('completed dst-2026-10-25T03 succeeded', 60_000);

  const failed = lab.effects('failed')[0]!;
  expect(failed.code).toBe('PTS_SLOT_CONTAINER_TAKEN');
  expect(failed.error).toContain('dst@2026-10-25T00:00:00.000Z');
  const rows = await states('dst');
  expect(rows.map(([slot, state]) => [slot, state])).toEqual([
    ['2026-10-25T00:00:00.000Z', 'succeeded'],
    ['2026-10-25T01:00:00.000Z', 'failed'],
    ['2026-10-25T02:00:00.000Z', 'succeeded'],
  ]);
  expect(rows[1]![2]).toContain('belongs to slot dst@2026-10-25T00:00:00.000Z');
  // The work of the repeated hour ran once, for the first slot only.
  expect(lab.effects('task').filter((e) => e.task === 'fetch' && e.container === 'dst-2026-10-25T02')).toHaveLength(1);
}, 180_000);
