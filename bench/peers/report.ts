/**
 * The peers table: per system and shape, wall time against the ideal, and
 * figures normalised by the system's store floor (single writes/s at
 * concurrency 16), as issue 13's outside check did.
 */
import type { Shape } from './run-peer.js';

export type Store = 'ferretdb' | 'redis' | 'postgres';

export interface Measured {
  system: string;
  store: Store;
  shape: Shape;
  seconds: number;
  finished: boolean;
  startedPerWorker: number[];
  /** 1-minute load average before → after the run. */
  load: string;
}

export interface Row extends Measured {
  shapeLabel: string;
  /** tasks × taskMs ÷ (concurrency × workers), in s. */
  idealSeconds: number;
  overIdeal: number;
  tasksPerSecond: number;
  /** Tasks per second for every 1,000 single writes per second the store takes. */
  perKFloor: number;
  /** The engine's perKFloor ÷ this system's, same shape (> 1: the engine does more with its store). */
  engineLead: number | null;
  /** Time over the ideal per task, in the store's single writes: (seconds − ideal) × floor ÷ tasks. */
  overheadWritesPerTask: number;
}

const labelOf = (s: Shape) => `${s.tasks}×${s.taskMs} ms c${s.concurrency}, ${s.workers} worker${s.workers > 1 ? 's' : ''}`;

export function rowsOf(measured: Measured[], floor: Record<Store, number>): Row[] {
  const rows = measured.map((m) => {
    const idealSeconds = (m.shape.tasks * m.shape.taskMs) / 1000 / (m.shape.concurrency * m.shape.workers);
    const tasksPerSecond = m.finished ? m.shape.tasks / m.seconds : NaN;
    return {
      ...m,
      shapeLabel: labelOf(m.shape),
      idealSeconds,
      overIdeal: m.seconds / idealSeconds,
      tasksPerSecond,
      perKFloor: (tasksPerSecond / floor[m.store]) * 1000,
      engineLead: null as number | null,
      overheadWritesPerTask: ((m.seconds - idealSeconds) * floor[m.store]) / m.shape.tasks,
    };
  });
  for (const row of rows) {
    const engine = rows.find((r) => r.system === 'engine' && r.shapeLabel === row.shapeLabel);
    if (engine) row.engineLead = engine.perKFloor / row.perKFloor;
  }
  return rows;
}

const f = (n: number | null, digits = 2) => (n === null || !Number.isFinite(n) ? '–' : n.toFixed(digits));

export function table(rows: Row[], floors: Record<Store, number[]>, mean: Record<Store, number>): string {
  const floorLines = (Object.keys(floors) as Store[])
    .filter((s) => floors[s].length)
    .map((s) => `| ${s} | ${floors[s].map((x) => Math.round(x)).join(' / ')} | ${Math.round(mean[s])} | ${f(mean[s] / mean.ferretdb, 1)}× |`);
  const lines = rows.map(
    (r) =>
      `| ${r.system} | ${r.shapeLabel} | ${f(r.seconds)}${r.finished ? '' : ' (unfinished)'} | ${f(r.overIdeal)}× of ${f(r.idealSeconds, 3)} s | ${f(r.perKFloor, 1)} | ${f(r.engineLead, 1)}× | ${f(r.overheadWritesPerTask, 2)} | ${r.startedPerWorker.join('/')} | ${r.load} |`,
  );
  return [
    '| store | writes/s at c16 (before / after) | mean | ÷ FerretDB |',
    '| --- | --- | --- | --- |',
    ...floorLines,
    '',
    '| system | shape | wall s | ÷ ideal | tasks/s per 1k floor writes/s | engine lead | overhead, floor writes per task | tasks per worker | load |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...lines,
  ].join('\n');
}
