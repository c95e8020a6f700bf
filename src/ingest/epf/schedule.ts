/**
 * The EPF job on a schedule: `0 * * * *` (UTC) by default, one container per
 * slot across every process that runs it (src/schedule claims each slot under
 * a unique key). A slot whose previous run is still going is skipped, and
 * after downtime only the latest missed slot is caught up.
 */
import { defineSchedule, type ScheduleDefinition, type ScheduleRunnerOptions } from '../../index.js';
import type { EpfEnv } from './env.js';
import { epfContainer, epfContainerName, EPF_RUNNER_LIMITS } from './job.js';

/** Name of the EPF schedule (its slot documents carry it). */
export const EPF_SCHEDULE_NAME = 'epf-hourly';

/** Options of {@link epfSchedule}. */
export interface EpfScheduleOptions {
  /** Cron expression of the slots. @defaultValue '0 * * * *' (hourly; EPF files of one drop appear over hours) */
  cron?: string;
  /** IANA time zone of `cron`. @defaultValue 'UTC' */
  timezone?: string;
  /** Runner settings of each slot. @defaultValue EPF_RUNNER_LIMITS */
  runner?: ScheduleRunnerOptions;
}

/** Declares the EPF schedule: each slot runs {@link epfContainer} named by {@link epfContainerName}. */
export function epfSchedule(env: EpfEnv, o: EpfScheduleOptions = {}): ScheduleDefinition {
  return defineSchedule({
    name: EPF_SCHEDULE_NAME,
    cron: o.cron ?? '0 * * * *',
    timezone: o.timezone ?? 'UTC',
    overlap: 'skip',
    catchUp: 'latest',
    container: (slot) => epfContainer(epfContainerName(slot), env),
    runner: o.runner ?? EPF_RUNNER_LIMITS,
  });
}
