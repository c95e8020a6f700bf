/**
 * `pts epf --hourly`: the job on its schedule (src/ingest/epf/schedule.ts)
 * until SIGINT or SIGTERM, with the live display and a summary per slot.
 */
import { Cron } from 'croner';
import type { Connection } from 'mongoose';
import { MongoStore, Scheduler, type Runner } from '../../index.js';
import type { EpfEnv } from '../../ingest/epf/env.js';
import { EPF_RUNNER_LIMITS } from '../../ingest/epf/job.js';
import { releaseSlotClaims } from '../../ingest/epf/file-claim.js';
import { announcePresence, type PresenceHeartbeat } from '../../ingest/epf/run-presence.js';
import { epfSchedule } from '../../ingest/epf/schedule.js';
import { summarize } from '../../ingest/epf/summary.js';
import { report } from './once.js';
import { formatDuration, type EpfOutput } from './output.js';
import type { ConsoleReporter } from './report.js';

/** Cron of `--hourly` (UTC): minute 0 of every hour. */
export const HOURLY_CRON = '0 * * * *';

/** Wires a runner's events to the live display. */
export function followRunner(runner: Runner, reporter: ConsoleReporter): void {
  runner.on('task:succeeded', () => reporter.taskFinished());
  runner.on('task:failed', (e) => {
    reporter.taskFinished();
    reporter.log(`✗ ${e.task} failed: ${e.error.message}`);
  });
  runner.on('task:retry', (e) => reporter.log(`↻ ${e.task}: ${e.error.message} (retry in ${formatDuration(e.delayMs)})`));
  runner.on('runner:error', (e) => reporter.log(`! ${e.context}: ${e.error.message}`));
}

/** When the next slot of `cron` (UTC) fires after `now`. */
export function nextSlot(cron: string, now = new Date()): Date | null {
  return new Cron(cron, { timezone: 'UTC', paused: true }).nextRun(now);
}

/** Runs the hourly schedule until `signal` aborts, then stops gracefully (running steps are released at once). */
export async function runHourly(o: {
  connection: Connection;
  env: EpfEnv & { reporter: ConsoleReporter };
  out: EpfOutput;
  json: boolean;
  signal: AbortSignal;
  checkpointIntervalMs?: number;
  /** Run the current hour's slot at start (Scheduler.trigger) instead of waiting for the next firing. */
  now?: boolean;
  /** Help every slot that another scheduler runs (Scheduler option `join`). */
  join?: boolean;
}): Promise<void> {
  const reporter = o.env.reporter;
  const store = await MongoStore.create(o.connection);
  const runnerOptions = {
    ...EPF_RUNNER_LIMITS,
    stopTimeoutMs: 0,
    ...(o.checkpointIntervalMs !== undefined ? { checkpointIntervalMs: o.checkpointIntervalMs } : {}),
  };
  const schedule = epfSchedule(o.env, { cron: HOURLY_CRON, runner: runnerOptions });
  const scheduler = await Scheduler.create({ connection: o.connection, schedules: [schedule], join: o.join ?? false });
  const started = new Map<string, { at: number; presence: Promise<PresenceHeartbeat> }>();
  const sayNext = async () => {
    // The scheduler's own answer (shared clock, decided slots); the local cron only if it cannot say.
    const next = await scheduler.nextFiring(schedule.name).catch(() => nextSlot(HOURLY_CRON));
    if (next) {
      o.out.say(`hourly: next slot at ${next.toISOString()} (in ${formatDuration(next.getTime() - Date.now())})`, {
        event: 'epf:next-slot',
        at: next.toISOString(),
      });
    }
  };
  scheduler.on('slot:started', (e) => {
    reporter.reset();
    const presence = announcePresence(o.connection, {
      prefix: o.env.prefix,
      container: e.container,
      runnerId: e.runner.runnerId,
      leaseMs: EPF_RUNNER_LIMITS.leaseMs,
    });
    presence.catch(() => undefined);
    started.set(e.container, { at: Date.now(), presence });
    o.out.say(`${e.resumed ? 'resuming' : 'starting'} ${e.container}`, { event: 'epf:slot-started', container: e.container });
    followRunner(e.runner, reporter);
  });
  scheduler.on('slot:skipped', (e) => o.out.say(`skipped ${e.container}: ${e.reason}`, { event: 'epf:slot-skipped', container: e.container }));
  scheduler.on('slot:missed', (e) =>
    o.out.say(`missed ${e.slots.length} slot(s) while no scheduler ran (catch-up: ${e.policy})`, { event: 'epf:slots-missed' }),
  );
  scheduler.on('scheduler:error', (e) => o.out.log('error', `! ${e.context}: ${e.error.message}`, { event: 'epf:error' }));
  scheduler.on('slot:completed', (e) => {
    reporter.stop();
    const slot = started.get(e.container);
    started.delete(e.container);
    void slot?.presence.then((p) => p.stop()).catch(() => undefined);
    const elapsed = Date.now() - (slot?.at ?? Date.now());
    // A failed or cancelled slot lets its files go at once: the next slot need not wait out their claims.
    if (e.status === 'failed' || e.status === 'cancelled') void releaseSlotClaims(o.env, e.container).catch((error: Error) => o.out.log('error', `! releasing the file claims of ${e.container}: ${error.message}`, { event: 'epf:error' }));
    void summarize(store, e.container, e.status, reporter.takeBytesReceived(), elapsed, o.connection, o.env.prefix).then(
      (s) => {
        report(s, o.out, o.json);
        void sayNext();
      },
      (error: Error) => o.out.log('error', `! summary of ${e.container}: ${error.message}`),
    );
  });
  await scheduler.start();
  if (o.now && !o.signal.aborted) {
    const outcome = await scheduler.trigger(schedule.name);
    if (outcome.action !== 'started') {
      o.out.say(`--now: the current hour was not started (${outcome.action}${outcome.reason ? `: ${outcome.reason}` : ''})`, {
        event: 'epf:now',
        action: outcome.action,
      });
    }
  }
  await sayNext();
  if (!o.signal.aborted) await new Promise<void>((resolve) => o.signal.addEventListener('abort', () => resolve(), { once: true }));
  await scheduler.stop();
  reporter.stop();
  await Promise.allSettled([...started.values()].map((s) => s.presence.then((p) => p.stop())));
}
