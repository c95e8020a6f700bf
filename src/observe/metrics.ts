import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Runner } from '../engine/runner.js';
import type { Scheduler } from '../schedule/scheduler.js';
import { LabelSet } from './labels.js';

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** The prom-client registry to register on (a new one when omitted). */
  registry?: Registry;
}

/** Buckets of attempt durations and queue waits, in seconds (1 s to 1 day). */
const DURATION_BUCKETS = [0.05, 0.25, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 86_400];

/**
 * Prometheus metrics of runners and schedulers (text format through
 * prom-client, https://github.com/siimon/prom-client). Every metric starts
 * with `pts_`. Labels: `container` and `task` hold name *families* (the
 * name up to its first digit: `epf-2026-12-06` counts as `epf`), at most 100
 * values each, then `other`; `outcome` is `succeeded`, `failed`, `retry`,
 * `released` or `cancelled`; `schedule` is the schedule's name. So a year of
 * hourly containers is one series, not 8,760.
 *
 *   const metrics = createMetrics();
 *   metrics.observeRunner(runner);            // before runner.run()
 *   http.createServer(metrics.handler).listen(9464);
 */
export class PtsMetrics {
  readonly registry: Registry;
  private readonly containers = new LabelSet();
  private readonly tasks = new LabelSet();
  private readonly started: Counter<'container' | 'task'>;
  private readonly ended: Counter<'container' | 'task' | 'outcome'>;
  private readonly duration: Histogram<'container' | 'task' | 'outcome'>;
  private readonly queueWait: Histogram<'container'>;
  private readonly retries: Counter<'container' | 'task'>;
  private readonly leaseExpiries: Counter<'container'>;
  private readonly takeovers: Counter<'container'>;
  private readonly fenced: Counter<'container'>;
  private readonly running: Gauge<'container'>;
  private readonly slotLimit: Gauge<'runner_group'>;
  private readonly processed: Counter<'container' | 'unit'>;
  private readonly scheduleLag: Histogram<'schedule'>;
  private readonly slots: Counter<'schedule' | 'state'>;

  constructor(options: MetricsOptions = {}) {
    const registers = [(this.registry = options.registry ?? new Registry())];
    const c = <L extends string>(name: string, help: string, labelNames: L[]) => new Counter<L>({ name, help, labelNames, registers });
    const h = <L extends string>(name: string, help: string, labelNames: L[], buckets = DURATION_BUCKETS) =>
      new Histogram<L>({ name, help, labelNames, buckets, registers });
    this.started = c('pts_attempts_started_total', 'Attempts started by runners of this process.', ['container', 'task']);
    this.ended = c('pts_attempts_ended_total', 'Attempts ended, by outcome (succeeded, failed for good, retry, released, cancelled).', ['container', 'task', 'outcome']);
    this.duration = h('pts_attempt_duration_seconds', 'Duration of attempts, by outcome (seconds).', ['container', 'task', 'outcome']);
    this.queueWait = h('pts_queue_wait_seconds', 'Time from a task becoming ready (its dependencies succeeded in this process, or its retry time came) to its start (seconds).', ['container']);
    this.retries = c('pts_retries_total', 'Failed attempts that will be retried.', ['container', 'task']);
    this.leaseExpiries = c('pts_lease_expiries_total', "Leases seen expiring: another runner stopped renewing a task's lease.", ['container']);
    this.takeovers = c('pts_takeovers_total', 'Tasks taken over after their lease expired.', ['container']);
    this.fenced = c('pts_fenced_writes_total', "Writes refused because the attempt's lease was taken over (fencing).", ['container']);
    this.running = new Gauge({ name: 'pts_slots_in_use', help: 'Attempts running in this process (slots in use).', labelNames: ['container'], registers });
    this.slotLimit = new Gauge({ name: 'pts_slot_limit', help: "A runner's concurrency limit (slots), per runner group.", labelNames: ['runner_group'], registers });
    this.processed = c('pts_units_processed_total', 'Bytes and rows processed, as handlers report them with ctx.progress(fraction, text, { bytes, rows }).', ['container', 'unit']);
    this.scheduleLag = h('pts_schedule_lag_seconds', "Delay from a slot's firing time to its container's start (seconds).", ['schedule']);
    this.slots = c('pts_schedule_slots_total', 'Slots handled by schedulers of this process, by state (started, queued, skipped, succeeded, failed, cancelled).', ['schedule', 'state']);
  }

  /** The metrics in Prometheus text format. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /** A Node `(req, res)` handler that answers with the metrics (mount it at `/metrics`). */
  readonly handler = (_req: IncomingMessage, res: ServerResponse): void => {
    this.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
      (error: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error)),
    );
  };

  /**
   * Counts a runner's attempts from its events; call before `run()`.
   * Returns a function that stops observing.
   */
  observeRunner(runner: Runner, options: { concurrency?: number; group?: string } = {}): () => void {
    const startedAt = new Map<string, number>();
    const readyAt = new Map<string, number>();
    const counts = new Map<string, { bytes: number; rows: number }>();
    let containerStartedAt = performance.now();
    const key = (e: { container: string; task: string }) => `${e.container}\u0000${e.task}`;
    const labels = (e: { container: string; task: string }) => ({ container: this.containers.of(e.container), task: this.tasks.of(e.task) });
    if (options.concurrency !== undefined) this.slotLimit.set({ runner_group: options.group ?? 'default' }, options.concurrency);
    const end = (e: { container: string; task: string }, outcome: string) => {
      const k = key(e);
      const t0 = startedAt.get(k);
      if (t0 === undefined) return;
      startedAt.delete(k);
      counts.delete(k);
      this.ended.inc({ ...labels(e), outcome });
      this.duration.observe({ ...labels(e), outcome }, (performance.now() - t0) / 1000);
      this.running.dec({ container: this.containers.of(e.container) });
      if (outcome === 'succeeded') readyAt.set(`${e.container}\u0000*`, performance.now());
    };
    const listeners: Array<[string, (p: never) => void]> = [
      ['container:started', () => (containerStartedAt = performance.now())],
      [
        'task:started',
        (e: { container: string; task: string; recovered: boolean }) => {
          const now = performance.now();
          const ready = Math.max(containerStartedAt, readyAt.get(key(e)) ?? 0, readyAt.get(`${e.container}\u0000*`) ?? 0);
          this.queueWait.observe({ container: this.containers.of(e.container) }, Math.max(0, now - ready) / 1000);
          readyAt.delete(key(e));
          startedAt.set(key(e), now);
          this.started.inc(labels(e));
          this.running.inc({ container: this.containers.of(e.container) });
          if (e.recovered) this.takeovers.inc({ container: this.containers.of(e.container) });
        },
      ],
      ['task:succeeded', (e: { container: string; task: string }) => end(e, 'succeeded')],
      ['task:failed', (e: { container: string; task: string }) => end(e, 'failed')],
      ['task:released', (e: { container: string; task: string }) => end(e, 'released')],
      ['task:cancelled', (e: { container: string; task: string }) => end(e, 'cancelled')],
      [
        'task:retry',
        (e: { container: string; task: string; retryAt: Date }) => {
          this.retries.inc(labels(e));
          end(e, 'retry');
          readyAt.set(key(e), performance.now() + Math.max(0, e.retryAt.getTime() - Date.now()));
        },
      ],
      [
        'task:lease-lost',
        (e: { container: string; task: string }) => {
          this.fenced.inc({ container: this.containers.of(e.container) });
          end(e, 'released');
        },
      ],
      ['task:waiting-for-lease', (e: { container: string }) => this.leaseExpiries.inc({ container: this.containers.of(e.container) })],
      [
        'task:progress',
        (e: { container: string; task: string; counts?: { bytes?: number; rows?: number } }) => {
          if (!e.counts) return;
          const k = key(e);
          const last = counts.get(k) ?? { bytes: 0, rows: 0 };
          const container = this.containers.of(e.container);
          for (const unit of ['bytes', 'rows'] as const) {
            const value = e.counts[unit];
            if (typeof value !== 'number' || !Number.isFinite(value)) continue;
            if (value > last[unit]) this.processed.inc({ container, unit }, value - last[unit]);
            last[unit] = value;
          }
          counts.set(k, last);
        },
      ],
    ];
    for (const [event, listener] of listeners) runner.on(event as never, listener);
    return () => {
      for (const [event, listener] of listeners) runner.events.off(event as never, listener);
    };
  }

  /** Counts a scheduler's slots and their lag; returns a function that stops observing. */
  observeScheduler(scheduler: Scheduler): () => void {
    const started = (e: { schedule: string; slot: Date; resumed: boolean }) => {
      this.slots.inc({ schedule: e.schedule, state: 'started' });
      if (!e.resumed) this.scheduleLag.observe({ schedule: e.schedule }, Math.max(0, Date.now() - e.slot.getTime()) / 1000);
    };
    const skipped = (e: { schedule: string }) => this.slots.inc({ schedule: e.schedule, state: 'skipped' });
    const queued = (e: { schedule: string }) => this.slots.inc({ schedule: e.schedule, state: 'queued' });
    const completed = (e: { schedule: string; status: string }) => this.slots.inc({ schedule: e.schedule, state: e.status });
    scheduler.on('slot:started', started);
    scheduler.on('slot:skipped', skipped);
    scheduler.on('slot:queued', queued);
    scheduler.on('slot:completed', completed);
    return () => {
      scheduler.events.off('slot:started', started);
      scheduler.events.off('slot:skipped', skipped);
      scheduler.events.off('slot:queued', queued);
      scheduler.events.off('slot:completed', completed);
    };
  }
}

/** Creates the metrics of this process (see {@link PtsMetrics}). */
export function createMetrics(options: MetricsOptions = {}): PtsMetrics {
  return new PtsMetrics(options);
}
