/**
 * The EPF ingestion job as a container: one `discover` task that lists the
 * feed and adds, per new file, `download -> extract -> import -> publish`,
 * then `export-complete` (see ./plan.ts for the order rules).
 */
import { defineContainer, type ContainerDefinition } from '../../index.js';
import type { EpfEnv } from './env.js';
import { discover, download, exportComplete, extract, importFile, publish } from './steps.js';

/**
 * Runner settings suited to the job: files download two at a time, imports
 * share the database; a 10 s lease (heartbeats every ~3.3 s), so a run
 * resumed after a crash takes over the dead run's tasks after 10 s of its own
 * time rather than the default 30 s. A file's waiting step is taken over from
 * a runner that runs nothing after 3 s (`affinityWaitMs`): a live runner
 * claims its own file's next step at once, so waiting longer only delays a
 * run resumed after a stop (a wrong guess costs one more download, never a
 * wrong row).
 */
export const EPF_RUNNER_LIMITS = { concurrency: 6, groups: { network: 2, cpu: 1, database: 2 }, leaseMs: 10_000, affinityWaitMs: 3_000 };

/**
 * Container name of a slot, e.g. `epf-2026-11-29T14:00Z`; with `seconds`
 * (one-off runs, which may follow each other within a minute)
 * `epf-2026-11-29T14:03:27Z`.
 */
export function epfContainerName(slot: Date, seconds = false): string {
  return `epf-${slot.toISOString().slice(0, seconds ? 19 : 16)}Z`;
}

/**
 * Declares one slot's container. Files run in parallel under the runner's
 * group limits; steps of one file run in sequence.
 */
export function epfContainer(name: string, env: EpfEnv): ContainerDefinition {
  return defineContainer(name, { failFast: false })
    .task('discover', { retries: 5, backoff: { initialMs: 2_000, factor: 2, maxMs: 60_000, jitter: 0.25 } }, (ctx) =>
      discover(ctx, env),
    )
    .handler('download', (ctx) => download(ctx, env))
    .handler('extract', (ctx) => extract(ctx, env))
    .handler('import', (ctx) => importFile(ctx, env))
    .handler('publish', (ctx) => publish(ctx, env))
    .handler('export-complete', (ctx) => exportComplete(ctx, env))
    .build();
}
