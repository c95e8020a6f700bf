/**
 * OpenTelemetry spans of a run that crashed and resumed, with the SDK's
 * in-memory exporter: a runner process is SIGKILLed inside an attempt; a
 * runner in this process takes the task over. Its attempt span shares the
 * run's trace id with the killed process's span, links to it, carries task,
 * attempt and outcome, and the handler's own span nests under it.
 */
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MongoStore, Runner } from '../src/index.js';
import { containerRunContext } from '../src/observe/tracing.js';
import { spawnTsChild, killChildrenAfterEach } from './support/child.js';
import { databasePerFile } from './support/database.js';
import { tracedContainer } from './fixtures/traced-container.js';

const db = databasePerFile();
const exporter = new InMemorySpanExporter();
killChildrenAfterEach();

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
});
afterAll(() => {
  trace.disable();
  context.disable();
});

it('links the resumed attempt to the crashed one, in one trace per run, with the handler\'s spans nested', async () => {
  const child = spawnTsChild('test/fixtures/traced-child.ts', [], { MONGODB_URI: db().uriWithDb });
  await child.waitForLine('started 1', 60_000);
  await child.kill('SIGKILL');

  const store = await MongoStore.create(db().connection);
  const incarnation = (await store.readContainerHead('traced'))!.record.incarnation ?? '';
  const crashed = await store.readTrace({ container: 'traced', incarnation, task: 'long', attempt: 1 });
  expect(crashed).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  const run = containerRunContext('traced', incarnation);
  expect(crashed!.split('-')[1]).toBe(run.traceId);

  const container = tracedContainer(async (ctx) => {
    expect(ctx.lastCheckpoint).toEqual({ rows: 500 });
    return trace.getTracer('user-code').startActiveSpan('copy rows', async (span) => {
      span.end();
      return 'copied';
    });
  });
  const runner = await Runner.create({ connection: db().connection, container, leaseMs: 2000, pollMs: 100 });
  expect((await runner.run()).status).toBe('succeeded');

  const spans = exporter.getFinishedSpans();
  const attempt = spans.find((s) => s.name === 'pts.attempt long')!;
  expect(attempt.attributes).toMatchObject({ 'pts.container': 'traced', 'pts.task': 'long', 'pts.attempt': 2, 'pts.resumed': true, 'pts.outcome': 'succeeded' });
  expect(attempt.spanContext().traceId).toBe(run.traceId);
  expect(attempt.links).toHaveLength(1);
  expect(`00-${attempt.links[0]!.context.traceId}-${attempt.links[0]!.context.spanId}-01`).toBe(crashed);
  const inner = spans.find((s) => s.name === 'copy rows')!;
  expect(inner.parentSpanContext?.spanId).toBe(attempt.spanContext().spanId);
  const session = spans.find((s) => s.name === 'pts.run traced')!;
  expect(attempt.parentSpanContext?.spanId).toBe(session.spanContext().spanId);
  expect(session.parentSpanContext?.spanId).toBe(run.spanId);
  expect(session.attributes['pts.status']).toBe('succeeded');
}, 120_000);
