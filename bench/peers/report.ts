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
  /** Index of the shape: the floors measured before it are `floors[store][round]`, after it `[round + 1]`. */
  round: number;
  /** 1-minute load average before → after the run. */
  load: string;
}

export interface Row extends Measured {
  shapeLabel: string;
  /** tasks × taskMs ÷ (concurrency × workers), in s. */
  idealSeconds: number;
  overIdeal: number;
  tasksPerSecond: number;
  /** The store's single writes/s around this run: mean of the floors just before and after its shape. */
  floor: number;
  /** Tasks per second for every 1,000 single writes per second the store takes. */
  perKFloor: number;
  /** The engine's perKFloor ÷ this system's, same shape (> 1: the engine does more with its store). */
  engineLead: number | null;
  /** Time over the ideal per task, in the store's single writes: (seconds − ideal) × floor ÷ tasks. */
  overheadWritesPerTask: number;
}

const labelOf = (s: Shape) => `${s.tasks}×${s.taskMs} ms c${s.concurrency}, ${s.workers} worker${s.workers > 1 ? 's' : ''}`;

export function rowsOf(measured: Measured[], floors: Record<Store, number[]>): Row[] {
  const rows = measured.map((m) => {
    const around = floors[m.store].slice(m.round, m.round + 2);
    const floor = around.reduce((a, b) => a + b, 0) / around.length;
    const idealSeconds = (m.shape.tasks * m.shape.taskMs) / 1000 / (m.shape.concurrency * m.shape.workers);
    const tasksPerSecond = m.finished ? m.shape.tasks / m.seconds : NaN;
    return {
      ...m,
      shapeLabel: labelOf(m.shape),
      idealSeconds,
      overIdeal: m.seconds / idealSeconds,
      tasksPerSecond,
      floor,
      perKFloor: (tasksPerSecond / floor) * 1000,
      engineLead: null as number | null,
      overheadWritesPerTask: ((m.seconds - idealSeconds) * floor) / m.shape.tasks,
    };
  });
  for (const row of rows) {
    const engine = rows.find((r) => r.system === 'engine' && r.shapeLabel === row.shapeLabel);
    if (engine) row.engineLead = engine.perKFloor / row.perKFloor;
  }
  return rows;
}

const f = (n: number | null, digits = 2) => (n === null || !Number.isFinite(n) ? '–' : n.toFixed(digits));

export function table(rows: Row[], floors: Record<Store, number[]>): string {
  const mean = (s: Store) => floors[s].reduce((a, b) => a + b, 0) / floors[s].length;
  const floorLines = (Object.keys(floors) as Store[])
    .filter((s) => floors[s].length)
    .map((s) => `| ${s} | ${floors[s].map((x) => Math.round(x)).join(' / ')} | ${Math.round(mean(s))} | ${f(mean(s) / mean('ferretdb'), 1)}× |`);
  const lines = rows.map(
    (r) =>
      `| ${r.system} | ${r.shapeLabel} | ${f(r.seconds)}${r.finished ? '' : ' (unfinished)'} | ${f(r.overIdeal)}× of ${f(r.idealSeconds, 3)} s | ${Math.round(r.floor)} | ${f(r.perKFloor, 1)} | ${f(r.engineLead, 1)}× | ${f(r.overheadWritesPerTask, 2)} | ${r.startedPerWorker.join('/')} | ${r.load} |`,
  );
  return [
    '| store | single writes/s at c16 (before each shape / after the last) | mean | ÷ FerretDB |',
    '| --- | --- | --- | --- |',
    ...floorLines,
    '',
    '| system | shape | wall s | ÷ ideal | floor writes/s | tasks/s per 1k floor writes/s | engine lead | overhead, floor writes per task | tasks per worker | load |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...lines,
  ].join('\n');
}
