import { createHash } from 'node:crypto';
import type { TaskContext, TaskHandler } from '../definition/types.js';
import type { TaskStore } from '../store/types.js';

/** The parts of `@opentelemetry/api` used here (it is an optional peer dependency, loaded on demand). */
type OtelApi = typeof import('@opentelemetry/api');
type OtelSpan = import('@opentelemetry/api').Span;
type OtelSpanContext = import('@opentelemetry/api').SpanContext;

let loading: Promise<OtelApi | null> | undefined;

/** `@opentelemetry/api` when installed, else null (tracing is then off). */
export function loadOpenTelemetry(): Promise<OtelApi | null> {
  // The namespace (named exports); its `default` export holds only the API singletons.
  loading ??= import('@opentelemetry/api').then(
    (m) => ((m as OtelApi).trace && (m as OtelApi).context ? (m as OtelApi) : ((m as { default?: OtelApi }).default ?? null)),
    () => null,
  );
  return loading;
}

/** W3C trace context `traceparent` of a span context (https://www.w3.org/TR/trace-context/#traceparent-header). */
export function toTraceparent(sc: OtelSpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1).toString(16).padStart(2, '0')}`;
}

function fromTraceparent(text: string): OtelSpanContext | null {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(text);
  return m ? { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16), isRemote: true } : null;
}

/**
 * The span context every runner of one container run hangs its spans under:
 * derived from the container's name and incarnation, so that the spans of
 * all runner processes of a run (and of runs resumed after a crash) share
 * one trace id, whatever process they ran in.
 */
export function containerRunContext(container: string, incarnation: string): OtelSpanContext {
  const hex = createHash('sha256').update(`persistent-task-status\u0000${container}\u0000${incarnation}`).digest('hex');
  return { traceId: hex.slice(0, 32), spanId: hex.slice(32, 48), traceFlags: 1, isRemote: true };
}

/**
 * OpenTelemetry spans of a runner: one span per runner session of a
 * container run (`pts.run <container>`), child of the run's deterministic
 * context (see {@link containerRunContext}), and one span per attempt
 * (`pts.attempt <task>`) with the task, attempt, runner and outcome as
 * attributes. The handler runs inside its attempt's span, so spans it starts
 * nest under it. An attempt after the first links to the span of the
 * attempt before it (retried, or resumed after a crash in another process):
 * each recorded attempt's `traceparent` is stored by the store (one small
 * write per attempt, only while an SDK records spans; none without one).
 */
export class RunnerTracing {
  private runSpan: OtelSpan | null = null;

  constructor(
    private readonly otel: OtelApi,
    private readonly store: TaskStore,
    private readonly container: string,
    private readonly incarnation: string,
    private readonly runnerId: string,
  ) {}

  /** Ends the session span with the container's status (a runner finished or stopped). */
  endRun(status: string): void {
    this.runSpan?.setAttribute('pts.status', status);
    this.runSpan?.end();
    this.runSpan = null;
  }

  private session(): OtelSpan {
    if (!this.runSpan) {
      const { trace, context } = this.otel;
      const parent = trace.setSpanContext(context.active(), containerRunContext(this.container, this.incarnation));
      this.runSpan = trace.getTracer('persistent-task-status').startSpan(
        `pts.run ${this.container}`,
        { attributes: { 'pts.container': this.container, 'pts.runner_id': this.runnerId } },
        parent,
      );
    }
    return this.runSpan;
  }

  /** The handler, run inside a span of its own for every attempt. */
  wrap(handler: TaskHandler<any, unknown>): TaskHandler<any, unknown> {
    const { trace, context } = this.otel;
    return async (ctx: TaskContext) => {
      let parent: ReturnType<typeof context.active>;
      let span: OtelSpan;
      try {
        parent = trace.setSpan(context.active(), this.session());
        span = this.startAttempt(ctx, parent);
      } catch {
        return handler(ctx); // tracing never fails a task
      }
      const own = span.spanContext();
      if (trace.isSpanContextValid(own) && span.isRecording()) {
        const key = { container: ctx.container, incarnation: this.incarnation, task: ctx.task };
        if (ctx.attempt > 1) {
          const before = await this.store.readTrace?.({ ...key, attempt: ctx.attempt - 1 }).catch(() => null);
          const linked = before ? fromTraceparent(before) : null;
          if (linked) span.addLink?.({ context: linked, attributes: { 'pts.link': 'previous attempt', 'pts.attempt': ctx.attempt - 1 } });
        }
        void this.store.saveTrace?.({ ...key, attempt: ctx.attempt }, toTraceparent(own)).catch(() => undefined);
      }
      let output: unknown;
      try {
        output = await context.with(trace.setSpan(parent, span), () => handler(ctx));
      } catch (error) {
        quietly(() => {
          span.setAttribute('pts.outcome', aborted(ctx) ? 'aborted' : 'failed');
          if (error instanceof Error) span.recordException(error);
          span.setStatus({ code: STATUS_ERROR, message: error instanceof Error ? error.message : String(error) });
          span.end();
        });
        throw error;
      }
      quietly(() => {
        span.setAttribute('pts.outcome', 'succeeded');
        span.setStatus({ code: STATUS_OK });
        span.end();
      });
      return output;
    };
  }

  private startAttempt(ctx: TaskContext, parent: ReturnType<OtelApi['context']['active']>): OtelSpan {
    return this.otel.trace.getTracer('persistent-task-status').startSpan(
      `pts.attempt ${ctx.task}`,
      {
        attributes: {
          'pts.container': ctx.container,
          'pts.task': ctx.task,
          'pts.attempt': ctx.attempt,
          'pts.runner_id': ctx.runnerId,
          'pts.resumed': ctx.lastCheckpoint !== undefined,
        },
      },
      parent,
    );
  }
}

/** `SpanStatusCode` values of the OpenTelemetry API (https://opentelemetry.io/docs/specs/otel/trace/api/#set-status). */
const STATUS_OK = 1;
const STATUS_ERROR = 2;

/** Runs span bookkeeping; an SDK that throws never changes a task's outcome. */
function quietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // ignored: tracing is best effort
  }
}

/** Whether the attempt was aborted (a fenced-off attempt's `ctx.signal` throws: aborted too). */
function aborted(ctx: TaskContext): boolean {
  try {
    return ctx.signal.aborted;
  } catch {
    return true;
  }
}
