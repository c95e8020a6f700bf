/**
 * persistent-task-status: DAG containers of long tasks, run under concurrency
 * limits, checkpointed to MongoDB, resumable after any crash.
 */
export { defineContainer, compileDefinition, ContainerBuilder } from './definition/define.js';
export type { ContainerOptions, ContainerSpec, DeclaredTaskOptions } from './definition/define.js';
export type { BackoffOptions, TaskOptions, ResolvedTaskOptions } from './definition/options.js';
export { DEFAULT_TASK_OPTIONS } from './definition/options.js';
export type {
  CompiledTask,
  ContainerDefinition,
  DynamicTaskSpec,
  TaskContext,
  ProgressCounts,
  TaskHandler,
  TaskSpec,
} from './definition/types.js';
export { Runner } from './engine/runner.js';
export type { RunResult } from './engine/runner.js';
export type { GroupLimit, RateLimit, RunnerOptions } from './engine/runner-options.js';
export { RunnerEvents } from './engine/events.js';
export { runInWorker } from './engine/run-in-worker.js';
export type { WorkerHandlerOptions } from './engine/run-in-worker.js';
export type { RunnerEventMap, RunnerEventName } from './engine/events.js';
export { MongoStore } from './store/mongo/mongo-store.js';
export type { MongoStoreOptions } from './store/mongo/mongo-store.js';
export type * from './store/types.js';
export { summarizeContainer } from './status/container-status.js';
export type { ContainerStatusReport, RunnerLostReport, TaskStatusReport } from './status/container-status.js';
export { estimateRemaining } from './status/eta.js';
export type { EtaEstimate } from './status/eta.js';
export type { LivenessJudge, LostRunner } from './store/lease-health.js';
export * from './errors.js';
export { getContainerStatus, openStore } from './status/inspect.js';
export type { StatusReadOptions, StoreSource } from './status/inspect.js';
export { LeaseObserver } from './engine/lease-observer.js';
export { retryTasks, cancelContainer } from './engine/container-commands.js';
export { client } from './compat/default-client.js';
export { createClient, CompatClient } from './compat/client.js';
export type { CompatClientOptions } from './compat/client.js';
export { CompatContainer } from './compat/container.js';
export { CompatTask } from './compat/task.js';
export type { CompatTaskData } from './compat/task.js';
export type { CompatTaskValues, CompatDateInput } from './compat/values.js';
export type { NodeCallback } from './compat/callback.js';
export { ConcurrentUpdateError } from './compat/errors.js';
export { defineSchedule, MAX_CATCH_UP_LIMIT } from './schedule/define.js';
export type { CatchUpPolicy, OverlapPolicy, ScheduleDefinition, ScheduleOptions, ScheduleRunnerOptions, SlotContainer } from './schedule/define.js';
export { Scheduler } from './schedule/scheduler.js';
export type { Clock, SchedulerOptions, SlotOutcome } from './schedule/scheduler.js';
export { SchedulerEvents } from './schedule/events.js';
export type { SchedulerEventMap, SchedulerEventName } from './schedule/events.js';
export { MongoScheduleStore } from './store/mongo/schedule-store.js';
export type { MongoScheduleStoreOptions } from './store/mongo/schedule-store.js';
export { OPEN_SLOT_STATES, SLOT_STATES, slotKey } from './store/schedule-types.js';
export type {
  EndedSlotState,
  NewSlot,
  ScheduleDescription,
  ScheduleHead,
  ScheduleStore,
  SlotRecord,
  SlotState,
  TriggerRequest,
} from './store/schedule-types.js';
export { Ledger } from './ledger/ledger.js';
export type { LedgerOptions, RunClaimedResult } from './ledger/ledger.js';
export { LedgerClaim } from './ledger/claims.js';
export type { LedgerClaimOptions, LedgerClaimResult } from './ledger/claims.js';
export { MongoLedgerStore } from './store/mongo/ledger-store.js';
export type { LedgerClaimRecord, LedgerClaimStore, LedgerEntry, LedgerItem, LedgerStore } from './store/ledger-types.js';
export { createDashboard, basicAuth } from './observe/dashboard/index.js';
export type { DashboardAuth, DashboardHandler, DashboardOptions } from './observe/dashboard/index.js';
export { serveDashboard } from './observe/dashboard/serve.js';
export type { DashboardServer } from './observe/dashboard/serve.js';
export { createMetrics, PtsMetrics } from './observe/metrics.js';
export type { MetricsOptions } from './observe/metrics.js';
