import pLimit from 'p-limit';
import { summarizeContainer, type ContainerStatusReport } from '../../status/container-status.js';
import { readScheduleReports, type ScheduleReport } from '../../schedule/report.js';
import type { ScheduleStore } from '../../store/schedule-types.js';
import type { ContainerPageCursor, ContainerStatus, TaskStore, TaskState } from '../../store/types.js';
import { layoutGraph, type GraphLayout } from './layout.js';

/** Containers per page of the list. */
export const PAGE_SIZE = 25;
/** Characters of a checkpoint shown, at most (the rest is cut, with a note). */
export const CHECKPOINT_PREVIEW_CHARS = 2000;

/** One row of the container list. */
export interface ContainerRow {
  name: string;
  status: ContainerStatus;
  percentComplete: number;
  counts: ContainerStatusReport['counts'];
  total: number;
  runnersLost: number;
  createdAt: Date;
  finishedAt: Date | null;
  /** ms from creation to finish (or to now while running). */
  durationMs: number;
}

/** A page of the list, with the opaque cursor of the next page. */
export interface ListView {
  rows: ContainerRow[];
  next: string | null;
  /** Containers examined for this page: with a filter, a page may be short (or empty) while `next` goes on. */
  examined: number;
}

/** A task as the container page shows it: the status report plus what only the log knows. */
export interface TaskDetail {
  name: string;
  /** Byte, row or item progress found in the checkpoint (`{ bytes, totalBytes }`, `{ rows }`...), else null. */
  units: Record<string, number> | null;
  /** ms since the holder's last lease renewal, on the server's clock; null when not running or unknown. */
  heartbeatAgeMs: number | null;
  /** Every failed attempt of this task since its last reset: attempt number, time and error. */
  attempts: Array<{ attempt: number; at: Date; name: string; message: string; stack: string | null }>;
  /** The last checkpoint as JSON, cut at {@link CHECKPOINT_PREVIEW_CHARS}; null when none. */
  checkpoint: string | null;
  checkpointTruncated: boolean;
  /** The task's input as JSON, cut at {@link CHECKPOINT_PREVIEW_CHARS}; null when it has none. */
  input: string | null;
  inputTruncated: boolean;
  /** A failed task that failed on its own (not skipped or cancelled because of another). */
  rootFailure: boolean;
  /** ms left for this task by the container's estimator's rate, when it reports progress; else null. */
  etaMs: number | null;
}

/** The container page: its report, details per task and the laid-out graph. */
export interface ContainerView {
  report: ContainerStatusReport;
  details: TaskDetail[];
  graph: GraphLayout;
  /** The server's clock at the read (ISO), against which ages were judged; null when the server does not say. */
  serverReadAt: Date | null;
}

/** Thrown when a container does not exist (the page answers 404). */
export class UnknownContainer extends Error {}

/**
 * Encodes a list cursor for a URL: `[seq]`, `["f", n]` in a final status's list,
 * or `[createdAt ms, name]` among unlisted containers (`[]` from their newest).
 */
export function encodeCursor(cursor: ContainerPageCursor): string {
  const parts =
    'seq' in cursor ? [cursor.seq] : 'finished' in cursor ? ['f', cursor.finished] : cursor.legacy ? [cursor.legacy.createdAt.getTime(), cursor.legacy.name] : [];
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

/** Decodes a list cursor from a URL; null when it is not one (the caller answers 400). */
export function decodeCursor(text: string): ContainerPageCursor | null {
  const count = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
  try {
    const value: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (!Array.isArray(value)) return null;
    if (value.length === 0) return { legacy: null };
    if (value.length === 1 && count(value[0])) return { seq: value[0] };
    if (value.length === 2 && value[0] === 'f' && count(value[1])) return { finished: value[1] };
    if (value.length === 2 && Number.isSafeInteger(value[0]) && typeof value[1] === 'string') {
      return { legacy: { createdAt: new Date(value[0] as number), name: value[1] } };
    }
  } catch {
    // not JSON
  }
  return null;
}

/** Rows whose tasks are read at once (each read is a few point reads on small containers). */
const ROWS_AT_ONCE = 25;

/** Reads the list page: the page's containers (bounded reads), then each row's tasks ({@link ROWS_AT_ONCE} at a time). */
export async function readList(
  store: TaskStore,
  query: { status?: ContainerStatus; namePrefix?: string; after?: ContainerPageCursor | null },
): Promise<ListView> {
  const page = await store.listContainerPage({ limit: PAGE_SIZE, ...query });
  const limit = pLimit(ROWS_AT_ONCE);
  const rows = await Promise.all(
    page.containers.map((record) =>
      limit(async (): Promise<ContainerRow | null> => {
        const snapshot = await store.loadSnapshot(record.name, { outputs: false });
        if (!snapshot) return null; // deleted meanwhile
        const r = summarizeContainer(snapshot);
        const end = r.finishedAt ?? (r.status === 'running' ? snapshot.readAt : r.finishedAt);
        return {
          name: r.name,
          status: r.status,
          percentComplete: r.percentComplete,
          counts: r.counts,
          total: r.total,
          runnersLost: r.runnersLost,
          createdAt: r.createdAt,
          finishedAt: r.finishedAt,
          durationMs: Math.max(0, (end ?? snapshot.readAt).getTime() - r.createdAt.getTime()),
        };
      }),
    ),
  );
  return { rows: rows.filter((r): r is ContainerRow => r !== null), next: page.next ? encodeCursor(page.next) : null, examined: page.examined };
}

/** Reads one container's page; throws {@link UnknownContainer} when it does not exist. */
export async function readContainer(store: TaskStore, name: string): Promise<ContainerView> {
  const serverReadAt = (await store.serverTime?.()) ?? null;
  const snapshot = await store.loadSnapshot(name, { outputs: false });
  if (!snapshot) throw new UnknownContainer(name);
  const report = summarizeContainer({ ...snapshot, serverReadAt });
  const states = new Map(snapshot.tasks.map((t) => [t.record.name, t.state]));
  const records = new Map(snapshot.tasks.map((t) => [t.record.name, t.record.input]));
  const details = report.tasks.map((task): TaskDetail => {
    const state = states.get(task.name)!;
    const checkpoint = jsonPreview(state.checkpoint);
    const input = jsonPreview(records.get(task.name));
    return {
      name: task.name,
      units: progressUnits(state.checkpoint),
      heartbeatAgeMs:
        task.status === 'running' && state.leaseRenewedAt && serverReadAt
          ? Math.max(0, serverReadAt.getTime() - state.leaseRenewedAt.getTime())
          : null,
      attempts: state.errors.map((e) => ({ attempt: e.attempt, at: e.at, name: e.name, message: e.message, stack: e.stack })),
      checkpoint: checkpoint.text,
      checkpointTruncated: checkpoint.truncated,
      input: input.text,
      inputTruncated: input.truncated,
      rootFailure: task.status === 'failed' && state.cause === null,
      etaMs: taskEta(state, snapshot.readAt),
    };
  });
  return { report, details, graph: layoutGraph(report.tasks), serverReadAt };
}

/** Progress history (ms) a task's rate needs before it gives an ETA: a fraction reported at once says nothing of the rate. */
export const TASK_ETA_MIN_ELAPSED_MS = 1_000;

/**
 * Remaining ms of a running attempt by its own progress rate (fraction 0–1
 * gained since the attempt started, over the ms it took); null when it has
 * gained under 1 % or reported over less than {@link TASK_ETA_MIN_ELAPSED_MS}.
 */
export function taskEta(state: Pick<TaskState, 'status' | 'startedAt' | 'progress' | 'startProgress' | 'progressAt'>, now: Date): number | null {
  if (state.status !== 'running' || !state.startedAt) return null;
  const done = state.progress - state.startProgress;
  if (done < 0.01) return null;
  const elapsed = (state.progressAt ?? now).getTime() - state.startedAt.getTime();
  if (elapsed < TASK_ETA_MIN_ELAPSED_MS) return null;
  return Math.max(0, Math.round((elapsed / done) * (1 - state.progress)));
}

/** Numeric byte/row/item counters a checkpoint carries at its top level (`bytes`, `offset`, `rows`, `total*`...). */
function progressUnits(checkpoint: unknown): Record<string, number> | null {
  if (!checkpoint || typeof checkpoint !== 'object' || Array.isArray(checkpoint)) return null;
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(checkpoint)) {
    if (typeof value === 'number' && Number.isFinite(value) && /bytes|offset|rows|items|records|total|done|size/i.test(key)) {
      out[key] = value;
    }
  }
  return Object.keys(out).length > 0 ? out : null;
}

/** A value as indented JSON, cut at {@link CHECKPOINT_PREVIEW_CHARS} characters; null for none. */
function jsonPreview(value: unknown): { text: string | null; truncated: boolean } {
  if (value === undefined || value === null) return { text: null, truncated: false };
  let text: string;
  try {
    text = JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > CHECKPOINT_PREVIEW_CHARS ? { text: text.slice(0, CHECKPOINT_PREVIEW_CHARS), truncated: true } : { text, truncated: false };
}

/** A runner seen holding tasks in the running containers read. */
export interface RunnerRow {
  runnerId: string;
  tasks: Array<{ container: string; task: string; attempt: number }>;
  /** ms since its most recent lease renewal (server clock); null when unknown. */
  lastHeartbeatAgeMs: number | null;
  lost: boolean;
}

/** Runners seen in the newest running containers (at most `PAGE_SIZE` containers read). */
export async function readRunners(store: TaskStore): Promise<RunnerRow[]> {
  const page = await store.listContainerPage({ limit: PAGE_SIZE, status: 'running' });
  const runners = new Map<string, RunnerRow>();
  for (const record of page.containers) {
    const view = await readContainer(store, record.name).catch((e: unknown) => {
      if (e instanceof UnknownContainer) return null;
      throw e;
    });
    if (!view) continue;
    view.report.tasks.forEach((task, i) => {
      if (task.status !== 'running' || !task.runnerId) return;
      const row = runners.get(task.runnerId) ?? { runnerId: task.runnerId, tasks: [], lastHeartbeatAgeMs: null, lost: true };
      row.tasks.push({ container: record.name, task: task.name, attempt: task.attempt });
      const age = view.details[i]!.heartbeatAgeMs;
      if (age !== null) row.lastHeartbeatAgeMs = row.lastHeartbeatAgeMs === null ? age : Math.min(row.lastHeartbeatAgeMs, age);
      row.lost &&= task.runnerLost !== null;
      runners.set(task.runnerId, row);
    });
  }
  return [...runners.values()].sort((a, b) => a.runnerId.localeCompare(b.runnerId));
}

/** Schedules with cron, time zone, next firing (server clock) and their last 20 slots; empty without a schedule store. */
export async function readSchedules(store: TaskStore, schedules: ScheduleStore | undefined): Promise<ScheduleReport[]> {
  if (!schedules) return [];
  const now = (await store.serverTime?.()) ?? new Date();
  return readScheduleReports(schedules, now, 20);
}
