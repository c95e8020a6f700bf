import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { MongoScheduleStore, MongoStore } from '../src/index.js';
import { killChildrenAfterEach, makeTempDir, sideEffectLog, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
killChildrenAfterEach();

interface Effect {
  proc: string;
  event: string;
  container?: string;
  task?: string;
  action?: string;
  slot?: string;
  at?: number;
}

it('two scheduler processes ticking the same slots create and run each slot container exactly once', async () => {
  const dir = makeTempDir();
  const log = sideEffectLog<Effect>(path.join(dir, 'effects.jsonl'));
  const goFile = path.join(dir, 'go');
  const hours = ['14', '15', '16', '17', '18', '19'];
  const env = {
    MONGODB_URI: db().uriWithDb,
    LOG: log.path,
    MODE: 'race',
    GO_FILE: goFile,
    START_AT: '2026-11-29T13:30:00Z',
    SLOTS: hours.map((h) => `2026-11-29T${h}:00:00Z`).join(','),
  };
  const procs = ['A', 'B'].map((NAME) => spawnTsChild('test/fixtures/scheduler-child.ts', [], { ...env, NAME }, { label: `scheduler-${NAME}` }));
  await Promise.all(procs.map((p) => p.waitForLine('ready', 60_000)));
  fs.writeFileSync(goFile, 'go');
  await Promise.all(procs.map((p) => p.waitForLine('done', 60_000)));
  for (const p of procs) expect((await p.waitForExit()).code).toBe(0);

  const effects = log.read();
  const containers = hours.map((h) => `race-2026-11-29T${h}:00Z`);
  for (const [i, container] of containers.entries()) {
    const slot = `2026-11-29T${hours[i]}:00Z`;
    // Both processes ticked the slot: one claimed and started it, the other found it taken.
    const outcomes = effects.filter((e) => e.event === 'outcome' && e.slot === slot).map((e) => e.action).sort();
    expect(outcomes, slot).toEqual(['started', 'taken']);
    expect(effects.filter((e) => e.event === 'slot-started' && e.container === container), container).toHaveLength(1);
    for (const task of ['fetch', 'import']) {
      expect(effects.filter((e) => e.event === "task" && e.task === task && e.container === container), `${container} ${task}: ${JSON.stringify(effects.filter((e) => e.container === container))}`).toHaveLength(1);
    }
  }
  const store = await MongoStore.create(db().connection);
  const listed = await store.listContainers();
  expect(listed.map((c) => c.name).sort()).toEqual(containers);
  expect(listed.every((c) => c.status === 'succeeded')).toBe(true);
  const slots = await (await MongoScheduleStore.create(db().connection)).listSlots('race');
  expect(slots.map((s) => [s.container, s.state])).toEqual(containers.map((c) => [c, 'succeeded']));
  // Which process won is up to the race; say so for the record.
  const winners = slots.map((s) => s.claimedBy).join('');
  const gaps = hours.map((h) => {
    const at = effects.filter((e) => e.event === 'outcome' && e.slot === `2026-11-29T${h}:00Z`).map((e) => e.at!);
    return Math.abs(at[0]! - at[1]!);
  });
  process.stderr.write(`once-per-slot: winners in slot order ${winners}; ms between the two processes' outcomes ${gaps.join(',')}\n`);
});
