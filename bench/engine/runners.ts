/**
 * Many runners on one container: 1, 2 and 4 runner processes (forked, each
 * with its own connection) start together on the same container; the
 * speed-up of k runners is the wall time of one runner divided by that of k.
 */
import { fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { uriFor, type Ctx } from './harness.js';
import { round } from './monitor.js';
import type { RunnersJob, RunnersReport } from './runners-child.js';
import { overBy, underBy, type Results } from './report.js';

/** Goal: k runners at least this times as fast as one. */
export const SPEEDUP_GOALS: Record<number, number> = { 2: 1.8, 4: 3.2 };

/** Goal: one runner on 1,000 tasks of 50 ms at concurrency 16 within this times the ideal wall time. */
export const SHORT_TASKS_GOAL = 1.2;

const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** What k runner processes did on one container, from the `go` to the last one's end. */
export interface RunnersRun {
  runners: number;
  /** From the `go` to the end of the last task's handler (the work's makespan), in s. */
  seconds: number;
  /** From the `go` to the last process's end (each runner's run() returns once it has seen every outcome), in s. */
  exitSeconds: number;
  startedPerRunner: number[];
  commands: number;
  /** Write commands (insert, update, delete) of every process. */
  writes: number;
  /** CPU time of each runner process during its run, in ms. */
  cpuMsPerRunner: number[];
  /** Claims lost to another runner, every process summed. */
  lostClaims: number;
  /** Handler time of every task (sum of their wall-clock spans), in ms. */
  busyMs: number;
  /** Most tasks running at once, across the processes (from their wall-clock spans). */
  maxRunning: number;
  /** Wall-clock start of every task (ms since the epoch). */
  starts: number[];
  /** Commands by name, summed over the processes. */
  byName: Record<string, number>;
  /** Commands by name and collection, writes also by what they did (see CommandCounter), summed over the processes. */
  byTarget: Record<string, number>;
  finished: boolean;
  /** Each runner's handler spans, ms after the `go`. */
  spansPerRunner: Array<Array<[number, number]>>;
}

/** Starts `k` runner processes on one fresh container and lets them run it together. */
export async function runProcesses(ctx: Ctx, k: number, job: Omit<RunnersJob, 'uri' | 'container'>): Promise<RunnersRun> {
  const full: RunnersJob = { ...job, uri: uriFor(ctx.serverUri, `pts_bench_runners_${Date.now()}`), container: 'bench' };
  const children = Array.from({ length: k }, () =>
    fork(fileURLToPath(new URL('./runners-child.ts', import.meta.url)), [], {
      env: { ...process.env, BENCH_RUNNERS_JOB: JSON.stringify(full) },
      execArgv: ['--import', TSX],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  try {
    const reports = children.map(
      (child) =>
        new Promise<RunnersReport>((resolve, reject) => {
          child.on('message', (m) => {
            if (m !== 'ready') resolve(m as RunnersReport);
          });
          child.on('error', reject);
          child.on('exit', (code) => reject(new Error(`runner process exited ${code} without a report`)));
        }),
    );
    await Promise.all(children.map((child) => new Promise<void>((resolve) => child.once('message', () => resolve()))));
    const t0 = performance.now();
    const goAt = Date.now();
    for (const child of children) child.send('go');
    const done = await Promise.all(reports);
    const exitSeconds = (performance.now() - t0) / 1000;
    const lastEnd = Math.max(...done.flatMap((r) => r.spans.map(([, end]) => end)));
    // A runner left idle learns the others' last outcomes at its next poll: the work is done before.
    const seconds = Number.isFinite(lastEnd) ? (lastEnd - goAt) / 1000 : exitSeconds;
    return {
      runners: k,
      seconds,
      exitSeconds,
      startedPerRunner: done.map((r) => r.started),
      commands: done.reduce((s, r) => s + r.commands, 0),
      writes: done.reduce((s, r) => s + (r.byName.insert ?? 0) + (r.byName.update ?? 0) + (r.byName.delete ?? 0), 0),
      cpuMsPerRunner: done.map((r) => Math.round(r.cpuMs)),
      lostClaims: done.reduce((s, r) => s + r.lostClaims, 0),
      busyMs: done.reduce((s, r) => s + r.spans.reduce((b, [start, end]) => b + (end - start), 0), 0),
      maxRunning: maxOverlap(done.flatMap((r) => r.spans)),
      starts: done.flatMap((r) => r.spans.map(([start]) => start)),
      byName: sumOf(done.map((r) => r.byName)),
      byTarget: sumOf(done.map((r) => r.byTarget)),
      finished: done.every((r) => r.status === 'succeeded'),
      spansPerRunner: done.map((r) => r.spans.map(([s, e]) => [s - goAt, e - goAt] as [number, number])),
    };
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    const mongoose = (await import('mongoose')).default;
    const conn = await mongoose.createConnection(full.uri).asPromise();
    await conn.dropDatabase().catch(() => undefined);
    await conn.close();
  }
}

/** Counts by key summed over processes. */
function sumOf(counts: ReadonlyArray<Record<string, number>>): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const c of counts) for (const [k, n] of Object.entries(c)) sum[k] = (sum[k] ?? 0) + n;
  return sum;
}

/** Most spans `[start, end]` open at one instant. */
export function maxOverlap(spans: ReadonlyArray<[number, number]>): number {
  const events = spans.flatMap(([s, e]) => [[s, 1] as const, [e, -1] as const]);
  // An end and a start at the same ms do not overlap: ends first.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let max = 0;
  for (const [, d] of events) max = Math.max(max, (open += d));
  return max;
}

/**
 * A global group limit: 4 runner processes of concurrency 8 on 128 tasks of
 * 100 ms under `groups: { api: { global: 4 } }`, against the same run
 * without the limit's slots (`{ concurrency: 8 }` per runner): extra commands
 * per task, and the most tasks seen running at once against the limit.
 */
export async function globalLimitCase(ctx: Ctx, results: Results): Promise<void> {
  const shape = { tasks: 128, taskMs: 100, concurrency: 8, pollMs: ctx.opts.pollMs, budgetS: 120 };
  const limit = 4;
  const free = await runProcesses(ctx, 4, { ...shape, group: { name: 'api', limit: { concurrency: 8 } } });
  const limited = await runProcesses(ctx, 4, { ...shape, group: { name: 'api', limit: { global: limit } } });
  const extra = (limited.commands - free.commands) / shape.tasks;
  const extraWrites = (limited.writes - free.writes) / shape.tasks;
  results.raw('global-limit', { free, limited, limit, extraCommandsPerTask: round(extra), extraWritesPerTask: round(extraWrites) });
  results.add({
    case: `global limit ${limit}, 4 runners, ${shape.tasks}×${shape.taskMs} ms`,
    tasks: shape.tasks,
    cmdsPerTask: round(limited.commands / shape.tasks),
    seconds: round(limited.seconds),
    ratio: `max running ${limited.maxRunning} (limit ${limit}); ${extra >= 0 ? '+' : ''}${extra.toFixed(2)} cmds/task over no global limit (${(free.commands / shape.tasks).toFixed(2)})`,
    ratios: { maxRunning: limited.maxRunning, extraCommandsPerTask: round(extra), extraWritesPerTask: round(extraWrites) },
    goal: `max running ≤ ${limit}`,
    met: limited.finished && limited.maxRunning <= limit,
    note: `${extraWrites >= 0 ? '+' : ''}${extraWrites.toFixed(2)} writes/task (goal: 1 per claim + 1 per release, more when slots are contended); started per runner ${limited.startedPerRunner.join('/')}`,
  });
}

/**
 * A rate limit: 4 runner processes of concurrency 8 on 60 tasks of 50 ms
 * under `groups: { api: { rate: { max: 10, perMs: 1000 } } }`, against the
 * same run without it: extra commands and writes per task, the most starts
 * seen in one window (windows of this machine's clock, which is the server's
 * when the server runs here), and how much of the allowance was used.
 */
export async function rateLimitCase(ctx: Ctx, results: Results): Promise<void> {
  const shape = { tasks: 60, taskMs: 50, concurrency: 8, pollMs: ctx.opts.pollMs, budgetS: 120 };
  const max = 10;
  const perMs = 1000;
  const free = await runProcesses(ctx, 4, { ...shape, group: { name: 'api', limit: { concurrency: 8 } } });
  const limited = await runProcesses(ctx, 4, { ...shape, group: { name: 'api', limit: { rate: { max, perMs } } } });
  const windows = new Map<number, number>();
  for (const s of limited.starts) windows.set(Math.floor(s / perMs), (windows.get(Math.floor(s / perMs)) ?? 0) + 1);
  const most = Math.max(0, ...windows.values());
  const spanned = windows.size === 0 ? 0 : Math.max(...windows.keys()) - Math.min(...windows.keys()) + 1;
  // Of the windows the run spanned, the last one is partial (nothing left to start): left out.
  const used = spanned > 1 ? (limited.starts.length - windows.get(Math.max(...windows.keys()))!) / ((spanned - 1) * max) : 1;
  // One runner: what a token costs without contention.
  const freeOne = await runProcesses(ctx, 1, { ...shape, group: { name: 'api', limit: { concurrency: 8 } } });
  const limitedOne = await runProcesses(ctx, 1, { ...shape, group: { name: 'api', limit: { rate: { max, perMs } } } });
  const extraWritesOne = (limitedOne.writes - freeOne.writes) / shape.tasks;
  const extra = (limited.commands - free.commands) / shape.tasks;
  const extraWrites = (limited.writes - free.writes) / shape.tasks;
  results.raw('rate-limit one runner', { free: freeOne, limited: limitedOne, extraWritesPerTask: round(extraWritesOne), seconds: round(limitedOne.seconds), idealSeconds: shape.tasks / max - 1 });
  results.raw('rate-limit', { free, limited, max, perMs, startsPerWindow: [...windows], extraCommandsPerTask: round(extra), extraWritesPerTask: round(extraWrites), allowanceUsed: round(used) });
  results.add({
    case: `rate limit ${max}/${perMs} ms, 4 runners, ${shape.tasks}×${shape.taskMs} ms`,
    tasks: shape.tasks,
    cmdsPerTask: round(limited.commands / shape.tasks),
    seconds: round(limited.seconds),
    ratio: `most starts per window ${most} (max ${max}); allowance used ${(used * 100).toFixed(0)} %; ${extra >= 0 ? '+' : ''}${extra.toFixed(2)} cmds/task over no rate limit (${(free.commands / shape.tasks).toFixed(2)})`,
    ratios: { mostStartsPerWindow: most, allowanceUsed: round(used), extraCommandsPerTask: round(extra), extraWritesPerTask: round(extraWrites) },
    goal: `≤ ${max} starts per window`,
    met: limited.finished && most <= max,
    note: `${extraWrites >= 0 ? '+' : ''}${extraWrites.toFixed(2)} writes/task (goal: 1 per claim; tokens found taken and sweeps add more); one runner alone: ${extraWritesOne >= 0 ? '+' : ''}${extraWritesOne.toFixed(2)} writes/task, ${limitedOne.seconds.toFixed(1)} s (ideal ${(shape.tasks / max - 1).toFixed(0)}+ s); started per runner ${limited.startedPerRunner.join('/')}; commands ${JSON.stringify(limited.byName)} against ${JSON.stringify(free.byName)}`,
  });
}

/**
 * 1, 2 and 4 runner processes on each shape, in turn, `runnersReps` times
 * (other load moves single runs a lot on a shared machine); each k is
 * reported by its median wall time, its speed-up as the median one runner's
 * over it, with every round's own speed-up (k against the one runner of the
 * same round) in the note.
 */
export async function runnersCase(ctx: Ctx, results: Results): Promise<void> {
  const shapes = [
    { tasks: 128, taskMs: 500, concurrency: 8 },
    { tasks: ctx.opts.quick ? 400 : 1000, taskMs: 50, concurrency: 16 },
  ];
  const reps = Math.max(1, ctx.opts.runnersReps);
  for (const shape of shapes) {
    const rounds: Array<Map<number, { run: RunnersRun; load: string }>> = [];
    for (let r = 0; r < reps; r++) {
      const round = new Map<number, { run: RunnersRun; load: string }>();
      for (const k of [1, 2, 4]) {
        const loadBefore = loadavg()[0]!;
        const run = await runProcesses(ctx, k, { ...shape, pollMs: ctx.opts.pollMs, budgetS: 120 });
        round.set(k, { run, load: `${loadBefore.toFixed(1)}→${loadavg()[0]!.toFixed(1)}` });
      }
      rounds.push(round);
    }
    const oneMedian = median(rounds.map((round) => round.get(1)!.run.seconds));
    for (const k of [1, 2, 4]) {
      const runs = rounds.map((round) => round.get(k)!);
      const seconds = median(runs.map((r) => r.run.seconds));
      // The round whose wall time is the median stands for the others in the details.
      const { run } = runs.find((r) => r.run.seconds === seconds) ?? runs[0]!;
      const perRound = rounds.map((round) => round.get(1)!.run.seconds / round.get(k)!.run.seconds);
      const speedup = oneMedian / seconds;
      // Slot utilisation: handler time over the slots' time (every slot of every runner, the whole run).
      const utilisation = run.busyMs / (shape.concurrency * k * run.seconds * 1000);
      const ideal = (shape.tasks * shape.taskMs) / 1000 / (shape.concurrency * k);
      const goal = SPEEDUP_GOALS[k];
      // One runner on short tasks: wall time against the ideal (the issue's 1.2×).
      const shortGoal = k === 1 && shape.taskMs <= 50 ? SHORT_TASKS_GOAL : undefined;
      const finished = runs.every((r) => r.run.finished);
      const firstStartMs = Math.max(...run.spansPerRunner.map((spans) => Math.min(...spans.map(([start]) => start))));
      const loads = `load ${runs.map((r) => r.load).join(', ')}`;
      const name = `runners ${k}× ${shape.tasks}×${shape.taskMs} ms c${shape.concurrency}`;
      results.raw(name, {
        rounds: runs.map((r) => ({ ...r.run, seconds: round(r.run.seconds), load: r.load })),
        seconds: round(seconds),
        idealSeconds: ideal,
        speedup: round(speedup),
        speedupPerRound: perRound.map(round),
        utilisation: round(utilisation),
      });
      results.add({
        case: name,
        tasks: shape.tasks,
        cmdsPerTask: round(run.commands / shape.tasks),
        seconds: round(seconds),
        ratio: `${speedup.toFixed(2)}× one runner; ${(seconds / ideal).toFixed(2)}× ideal ${ideal.toFixed(2)} s${reps > 1 ? ` (medians of ${reps})` : ''}`,
        ratios: { speedup: round(speedup), overIdeal: round(seconds / ideal), utilisation: round(utilisation) },
        goal: goal ? `≥ ${goal}×` : shortGoal ? `≤ ${shortGoal}× ideal` : undefined,
        met: goal ? finished && speedup >= goal : shortGoal ? finished && seconds / ideal <= shortGoal : null,
        note: [
          goal ? underBy(speedup, goal) : shortGoal ? overBy(seconds / ideal, shortGoal) : undefined,
          reps > 1 && k > 1 ? `each round ${perRound.map((x) => x.toFixed(2)).join('/')}×` : undefined,
          `slots busy ${(utilisation * 100).toFixed(0)} %`,
          `last runner's first start ${firstStartMs} ms after the go`,
          `started per runner ${run.startedPerRunner.join('/')}`,
          `claims lost ${run.lostClaims}`,
          `runner CPU ${run.cpuMsPerRunner.map((ms) => (ms / 1000).toFixed(1)).join('/')} s`,
          `processes ended at ${run.exitSeconds.toFixed(2)} s`,
          loads,
          finished ? undefined : 'did not finish',
        ]
          .filter(Boolean)
          .join('; '),
      });
    }
  }
}

/** The median of some numbers (the lower middle one of an even count: a value that was measured). */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}
