import { assertSafeName } from '../definition/names.js';
import { InvalidOptionError } from '../errors.js';
import type { TaskEdit } from '../store/types.js';
import { assertStorable } from '../definition/storable.js';

/** A date field of the 0.0.1 API: a Date, an ISO string or epoch milliseconds (as mongoose cast them), or null. */
export type CompatDateInput = Date | string | number | null;

/** Fields `addTask` and `updateTask` accept, as in 0.0.1, plus `dependsOn` and `handler` for the engine. */
export interface CompatTaskValues {
  /** Renames the task (`updateTask` only; in `addTask` it must equal the name argument). */
  name?: string;
  taskData?: unknown;
  maxRetries?: number;
  delayBetweenRetriesInSeconds?: number;
  /** Names of tasks of the same container that must be complete first. */
  dependsOn?: string[];
  /** Key of the engine handler that runs the task. @defaultValue the task name */
  handler?: string;
  isComplete?: boolean;
  hasFailed?: boolean;
  /** 0 to 100. */
  percentageComplete?: number;
  statusText?: string;
  processingData?: unknown;
  invokeCount?: number;
  /** Stored as given; the engine writes its own when it runs the task. Null clears it. */
  taskDurationInMilliseconds?: number | null;
  lastInvokedAt?: CompatDateInput;
  taskEndedAt?: CompatDateInput;
  leasedTill?: CompatDateInput;
}

/** Validated static fields: they go to the task record. */
export interface RecordFields {
  name?: string;
  /** Present (possibly null) when `taskData` was given. */
  input?: unknown;
  retries?: number;
  delayMs?: number;
  dependsOn?: string[];
  handler?: string;
}

/** Validated state fields: they become one `edited` transition. */
export type StateFields = Omit<TaskEdit, 'status'> & { isComplete?: boolean; hasFailed?: boolean };

/** `values` split by where each field is persisted. */
export interface ParsedValues {
  record: RecordFields;
  state: StateFields;
  hasRecord: boolean;
  hasState: boolean;
}

type Parser = (value: unknown, out: ParsedValues) => void;

const PARSERS: Record<keyof CompatTaskValues, Parser> = {
  name: (v, o) => {
    assertSafeName('task', v);
    o.record.name = v;
  },
  taskData: (v, o) => {
    assertStorable('taskData', v);
    o.record.input = v;
  },
  maxRetries: (v, o) => (o.record.retries = integer('maxRetries', v)),
  delayBetweenRetriesInSeconds: (v, o) => {
    const seconds = number('delayBetweenRetriesInSeconds', v);
    if (seconds < 0) throw new InvalidOptionError('delayBetweenRetriesInSeconds', `must be >= 0, got ${seconds}`);
    o.record.delayMs = Math.round(seconds * 1000);
  },
  dependsOn: (v, o) => {
    if (!Array.isArray(v)) throw new InvalidOptionError('dependsOn', 'must be an array of task names');
    for (const d of v) assertSafeName('task', d);
    o.record.dependsOn = [...new Set(v as string[])];
  },
  handler: (v, o) => {
    assertSafeName('handler', v);
    o.record.handler = v;
  },
  isComplete: (v, o) => (o.state.isComplete = boolean('isComplete', v)),
  hasFailed: (v, o) => (o.state.hasFailed = boolean('hasFailed', v)),
  percentageComplete: (v, o) => {
    const pct = number('percentageComplete', v);
    if (pct < 0 || pct > 100) throw new InvalidOptionError('percentageComplete', `must be between 0 and 100, got ${pct}`);
    o.state.progress = pct / 100;
  },
  statusText: (v, o) => {
    if (typeof v !== 'string') throw new InvalidOptionError('statusText', `must be a string, got ${typeOf(v)}`);
    o.state.statusText = v;
  },
  processingData: (v, o) => {
    assertStorable('processingData', v);
    o.state.checkpoint = v;
  },
  invokeCount: (v, o) => (o.state.attempt = integer('invokeCount', v)),
  taskDurationInMilliseconds: (v, o) => {
    if (v === null) o.state.durationMs = null;
    else if (number('taskDurationInMilliseconds', v) < 0) {
      throw new InvalidOptionError('taskDurationInMilliseconds', `must be >= 0 or null, got ${String(v)}`);
    } else o.state.durationMs = v as number;
  },
  lastInvokedAt: (v, o) => (o.state.startedAt = date('lastInvokedAt', v)),
  taskEndedAt: (v, o) => (o.state.endedAt = date('taskEndedAt', v)),
  leasedTill: (v, o) => (o.state.leaseUntil = date('leasedTill', v)),
};

const STATE_KEYS = new Set<string>([
  'isComplete',
  'hasFailed',
  'percentageComplete',
  'statusText',
  'processingData',
  'invokeCount',
  'taskDurationInMilliseconds',
  'lastInvokedAt',
  'taskEndedAt',
  'leasedTill',
]);

/**
 * Validates `addTask`/`updateTask` values without touching the database:
 * unknown keys, wrong types and out-of-range numbers throw an
 * {@link InvalidOptionError} (or {@link InvalidNameError}) naming the field.
 * Keys whose value is `undefined` are ignored; `null`/`undefined` values mean "nothing".
 */
export function parseTaskValues(values: unknown): ParsedValues {
  const out: ParsedValues = { record: {}, state: {}, hasRecord: false, hasState: false };
  if (values === null || values === undefined) return out;
  if (typeof values !== 'object' || Array.isArray(values)) {
    throw new InvalidOptionError('values', `must be an object or null, got ${typeOf(values)}`);
  }
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue;
    const parse = Object.hasOwn(PARSERS, key) ? PARSERS[key as keyof CompatTaskValues] : undefined;
    if (!parse) {
      throw new InvalidOptionError(key, `is not a task field (known: ${Object.keys(PARSERS).join(', ')})`);
    }
    parse(value, out);
    if (STATE_KEYS.has(key)) out.hasState = true;
    else out.hasRecord = true;
  }
  // `{ isComplete: true, hasFailed: true }` is how 0.0.1 records a failure (see edit-state.ts).
  return out;
}

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

function boolean(field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new InvalidOptionError(field, `must be a boolean, got ${typeOf(v)}`);
  return v;
}

function number(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new InvalidOptionError(field, `must be a finite number, got ${typeof v === 'number' ? String(v) : typeOf(v)}`);
  }
  return v;
}

function integer(field: string, v: unknown): number {
  const n = number(field, v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidOptionError(field, `must be a non-negative integer, got ${n}`);
  return n;
}

function date(field: string, v: unknown): Date | null {
  if (v === null) return null;
  const d = v instanceof Date ? new Date(v.getTime()) : typeof v === 'string' || typeof v === 'number' ? new Date(v) : null;
  if (!d || Number.isNaN(d.getTime())) {
    throw new InvalidOptionError(field, `must be a Date, an ISO date string, epoch milliseconds or null, got ${typeOf(v)}`);
  }
  return d;
}
