/** The two poisoned-value scenarios (poisoned-batch, closing-value): one container, two runners, a `poison` task. */
import { expect } from 'vitest';
import { readJsonl } from '../../support/side-effects.js';
import { testMongoKind } from '../../support/database.js';
import { shapeTasks } from '../../fixtures/chaos-shapes.js';
import type { ChaosRecord } from './check.js';
import { killAll, readContainer, report, scenario, settle, spawnRunner } from './scenario.js';

/**
 * Runs `flat:12` plus `poison` (returning the `POISON` value) on two runners
 * and judges it: the five properties for the shape's tasks, every task
 * started exactly once, and `poison` failed with UnstorableValueError on
 * FerretDB (refused values) or succeeded elsewhere.
 */
export async function runPoisoned(db: { uriWithDb: string }, name: string, poison: 'nested' | 'nan'): Promise<void> {
  const shape = 'flat:12';
  const s = scenario(name, {
    MONGODB_URI: db.uriWithDb, CONTAINER: name, SHAPE: shape, INC: '1', POISON: poison, ALIGN_END_MS: '200',
    LEASE_MS: '3000', HEARTBEAT_MS: '750', STEPS: '2', STEP_MS: '40', CONCURRENCY: '8',
  });
  try {
    const runners = ['R1', 'R2'].map((r) => spawnRunner(s, r));
    const ends = await Promise.all(runners.map((r) => settle(s, r, 120_000)));
    const snapshot = await readContainer(db.uriWithDb, name);
    const poisonState = snapshot?.tasks.find((t) => t.record.name === 'poison')?.state;
    const counts = report(s, snapshot, {
      shape,
      extra: { ends: JSON.stringify(ends), poison: `${poisonState?.status}/${poisonState?.lastError?.name ?? '-'}` },
    });
    const starts = readJsonl<ChaosRecord>(s.log).filter((r) => r.ev === 'start');
    const perTask = new Map<string, number>();
    for (const r of starts) perTask.set(r.task!, (perTask.get(r.task!) ?? 0) + 1);
    const tasks = [...shapeTasks(shape).map((t) => t.name), 'poison'];
    expect(Object.fromEntries(tasks.map((t) => [t, perTask.get(t) ?? 0]))).toEqual(Object.fromEntries(tasks.map((t) => [t, 1])));
    expect(counts.starts).toBe(tasks.length);
    if (testMongoKind() === 'ferretdb') {
      expect(poisonState).toMatchObject({ status: 'failed', recoveries: 0 });
      expect(poisonState?.lastError).toMatchObject({ name: 'UnstorableValueError' });
      expect(snapshot?.container.status).toBe('failed');
    } else {
      expect(poisonState?.status).toBe('succeeded');
    }
  } finally {
    await killAll(s);
  }
}
