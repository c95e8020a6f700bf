/**
 * `pts epf --hourly`: the job on its schedule (src/ingest/epf/schedule.ts)
 * until SIGINT or SIGTERM, with the live display and a summary per slot.
 */
import type { Connection } from 'mongoose';
import { MongoStore, Scheduler, type Runner, type ScheduleRunnerOptions } from '../../index.js';
import type { EpfEnv } from '../../ingest/epf/env.js';
import { epfSchedule } from '../../ingest/epf/schedule.js';
import { printSummary, type ConsoleReporter } from './report.js';
import { summarize } from '../../ingest/epf/summary.js';

/** Wires a runner's events to the live display. */
export function followRunner(runner: Runner, reporter: ConsoleReporter): void {
  runner.on('task:succeeded', () => reporter.taskFinished());
  runner.on('task:failed', (e) => {
    reporter.taskFinished();
    reporter.log(`✗ ${e.task} failed: ${e.error.message}`);
  });
  runner.on('task:retry', (e) => reporter.log(`↻ ${e.task}: ${e.error.message} (retry in ${Math.round(e.delayMs / 1000)} s)`));
  runner.on('runner:error', (e) => reporter.log(`! ${e.context}: ${e.error.message}`));
}

/** Runs the hourly schedule until SIGINT/SIGTERM, then stops gracefully. */
export async function runHourly(o: {
  connection: Connection;
  env: EpfEnv & { reporter: ConsoleReporter };
  runner: ScheduleRunnerOptions;
  log: (line: string) => void;
  json: boolean;
}): Promise<void> {
  const reporter = o.env.reporter;
  const store = await MongoStore.create(o.connection);
  const schedule = epfSchedule(o.env, { runner: o.runner });
  const scheduler = await Scheduler.create({ connection: o.connection, schedules: [schedule] });
  const started = new Map<string, number>();
  scheduler.on('slot:started', (e) => {
    reporter.reset();
    started.set(e.container, Date.now());
    o.log(`${e.resumed ? 'resuming' : 'starting'} ${e.container}`);
    followRunner(e.runner, reporter);
  });
  scheduler.on('slot:skipped', (e) => o.log(`skipped ${e.container}: ${e.reason}`));
  scheduler.on('slot:missed', (e) => o.log(`missed ${e.slots.length} slot(s) while no scheduler ran (catch-up: ${e.policy})`));
  scheduler.on('scheduler:error', (e) => o.log(`! ${e.context}: ${e.error.message}`));
  scheduler.on('slot:completed', (e) => {
    reporter.stop();
    void summarize(store, e.container, e.status, reporter.takeBytesReceived(), Date.now() - (started.get(e.container) ?? Date.now())).then(
      (s) => {
        printSummary(s, o.log);
        if (o.json) o.log(JSON.stringify(s));
      },
      (error: Error) => o.log(`! summary of ${e.container}: ${error.message}`),
    );
  });
  await scheduler.start();
  o.log('hourly: waiting for the next slot (minute 0 of every hour, UTC); Ctrl-C to stop');
  await new Promise<void>((resolve) => {
    const onSignal = () => resolve();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  o.log('stopping: letting running tasks finish (Ctrl-C again to force)…');
  process.once('SIGINT', () => process.exit(130));
  await scheduler.stop();
  reporter.stop();
}
