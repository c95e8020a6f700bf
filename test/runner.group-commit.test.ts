/**
 * Group commit keeps each entry's own truth: two tasks whose outcomes go to
 * the server in one insert never share a verdict. A value the server refuses
 * fails its own task (a typed error naming the path and the rule, before
 * anything is written), and never re-runs or fails the innocent task beside it.
 * Real runner and real test server; the values are the ones issue 12 quotes.
 */
import mongoose from 'mongoose';
import { describe, expect, it, onTestFinished } from 'vitest';
import { DEFAULT_TASK_OPTIONS, defineContainer, MongoStore, Runner, UnstorableValueError } from '../src/index.js';
import { uniqueName } from './support/compat.js';
import { databasePerFile, testMongoKind } from './support/database.js';
import { snapshotOf, stateOf } from './support/engine.js';

const db = databasePerFile();
const fast = { pollMs: 30, checkpointIntervalMs: 0, concurrency: 2 } as const;
const ferret = () => testMongoKind() === 'ferretdb';

/** Nests `leaf` in `levels` objects: `levels` levels of nesting as a value. */
function nested(levels: number, leaf: unknown = 1): unknown {
  let v = leaf;
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
}

/**
 * Runs `x` (returning `value`) and `y` (returning 'y', retries 0) so that both
 * handlers return in the same event-loop turn: their outcomes share one insert.
 */
async function besideInnocent(value: () => unknown, leaseMs = 3_000) {
  const name = uniqueName('poison');
  const runs: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let started = 0;
  const arrive = () => {
    if (++started === 2) setTimeout(release, 50);
  };
  const def = defineContainer(name)
    .task('x', { retries: 2, backoff: { initialMs: 0 } }, async (ctx) => {
      runs.push(`x#${ctx.attempt}`);
      arrive();
      await gate;
      return value();
    })
    .task('y', { retries: 0 }, async (ctx) => {
      runs.push(`y#${ctx.attempt}`);
      arrive();
      await gate;
      return 'y';
    });
  const runner = await Runner.create({ connection: db().connection, container: def, leaseMs, maxRecoveries: 2, ...fast });
  const events: string[] = [];
  for (const e of ['task:retry', 'task:failed', 'task:succeeded', 'task:lease-lost'] as const) {
    runner.on(e, (p) => events.push(`${e} ${p.task}`));
  }
  const t0 = performance.now();
  const result = await runner.run();
  const elapsedMs = performance.now() - t0;
  const snapshot = await snapshotOf(db().connection, name);
  return { name, runs, events, result, elapsedMs, x: stateOf(snapshot, 'x'), y: stateOf(snapshot, 'y'), snapshot };
}

describe('group commit: one entry, one verdict', () => {
  it('x returns { matrix: [[1, 2], [3, 4]] } beside y: y runs once and succeeds; x is judged alone', async () => {
    const r = await besideInnocent(() => ({ matrix: [[1, 2], [3, 4]] }));
    expect(r.runs.filter((s) => s.startsWith('y'))).toEqual(['y#1']);
    expect(r.y).toMatchObject({ status: 'succeeded', output: 'y', attempt: 1, failures: 0 });
    expect(r.events).not.toContain('task:retry y');
    expect(r.events).not.toContain('task:failed y');
    if (ferret()) {
      // FerretDB v1 refuses nested arrays: x fails at once, with the path and the rule.
      expect(r.runs.filter((s) => s.startsWith('x'))).toEqual(['x#1']);
      expect(r.x.status).toBe('failed');
      expect(r.x.lastError).toMatchObject({ name: 'UnstorableValueError', code: 'PTS_UNSTORABLE_VALUE' });
      expect(r.x.lastError!.message).toMatch(/output\.matrix\[0\].*nested array/);
      expect(r.result.status).toBe('failed');
    } else {
      expect(r.x).toMatchObject({ status: 'succeeded', output: { matrix: [[1, 2], [3, 4]] } });
      expect(r.result.status).toBe('succeeded');
    }
  });

  it('x returns { ratio: NaN } beside y: y is not coupled to x (one run, no recovery)', async () => {
    const r = await besideInnocent(() => ({ ratio: Number.NaN }));
    expect(r.runs.filter((s) => s.startsWith('y'))).toEqual(['y#1']);
    expect(r.y).toMatchObject({ status: 'succeeded', attempt: 1, recoveries: 0 });
    if (ferret()) {
      // FerretDB v1 closes the connection on NaN: refused at the edge, not after a lease.
      expect(r.runs.filter((s) => s.startsWith('x'))).toEqual(['x#1']);
      expect(r.x.status).toBe('failed');
      expect(r.x.lastError!.message).toMatch(/output\.ratio.*NaN/);
      expect(r.x.recoveries).toBe(0);
    } else {
      expect(r.x.status).toBe('succeeded');
    }
  });

  for (const [label, make, rule] of [
    ['Infinity', () => ({ v: [1, Number.POSITIVE_INFINITY] }), /output\.v\[1\].*Infinity/],
    ['a MinKey', async () => ({ k: new (await import('mongoose')).default.mongo.MinKey() }), /output\.k.*MinKey/],
    ['a Code', async () => ({ c: new (await import('mongoose')).default.mongo.Code('return 1') }), /output\.c.*Code/],
  ] as const) {
    it(`${label} in an output is refused on servers that cannot store it, and only there`, async () => {
      const value = await make();
      const r = await besideInnocent(() => value);
      expect(r.y).toMatchObject({ status: 'succeeded', attempt: 1, recoveries: 0 });
      if (ferret()) {
        expect(r.x.status).toBe('failed');
        expect(r.x.lastError!.message).toMatch(rule);
        expect(r.x.recoveries).toBe(0);
      } else {
        expect(r.x.status).toBe('succeeded');
      }
    });
  }

  it('an output 99 levels deep is stored; 100 levels (101 as stored) is refused on every server', async () => {
    const ok = await besideInnocent(() => nested(99));
    expect(ok.x).toMatchObject({ status: 'succeeded', output: nested(99) });
    const deep = await besideInnocent(() => nested(100));
    expect(deep.y).toMatchObject({ status: 'succeeded', attempt: 1 });
    expect(deep.x.status).toBe('failed');
    expect(deep.runs.filter((s) => s.startsWith('x'))).toEqual(['x#1']);
    expect(deep.x.lastError!.message).toMatch(/nests deeper than 100 levels as stored/);
  });
});

describe('store: a refused entry beside landed ones', () => {
  it('the store refuses a server-refused value with UnstorableValueError naming the path, before writing', async () => {
    if (!ferret()) return; // MongoDB stores NaN and nested arrays
    const store = await MongoStore.create(db().connection);
    const name = uniqueName('edge');
    await store.createContainer({ name, failFast: false, definition: null });
    await store.addTasks(name, [
      { name: 't', dependsOn: [], handler: 't', input: null, options: DEFAULT_TASK_OPTIONS, dynamic: false, addedBy: null },
    ]);
    const claim = (await store.claimTask({ container: name, task: 't', expectedToken: 0, claim: { runnerId: 'me', attempt: 1, leaseMs: 60_000, checkpoint: null } }))!;
    const err = await store.finishAttempt(claim, { kind: 'succeeded', output: { a: [[1]] } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnstorableValueError);
    expect((err as Error).message).toMatch(/output\.a\[0\]/);
    expect(stateOf(await snapshotOf(db().connection, name), 't').status).toBe('running');
  });
});

describe('store: entries of one insert judged one by one (no edge check in the way)', () => {
  const task = (name: string) => ({ name, dependsOn: [], handler: name, input: null, options: DEFAULT_TASK_OPTIONS, dynamic: false, addedBy: null });
  const claimOf = (runnerId: string) => ({ runnerId, attempt: 1, leaseMs: 60_000, checkpoint: null });

  it('a per-document refusal fails that entry alone; the claim beside it lands and is granted', async () => {
    if (!ferret()) return; // MongoDB stores nested arrays: nothing to refuse
    const store = await MongoStore.create(db().connection);
    const name = uniqueName('per-entry');
    await store.createContainer({ name, failFast: false, definition: null });
    await store.addTasks(name, [task('a'), task('b')]);
    // Same turn: one insert. An edit (no value check on this path) with a nested array, and a claim.
    const [edit, claim] = await Promise.allSettled([
      store.settleTask(name, 'a', 0, { kind: 'edited', set: { output: { m: [[1, 2]] } } as never }),
      store.claimTask({ container: name, task: 'b', expectedToken: 0, claim: claimOf('me') }),
    ]);
    expect(edit.status).toBe('rejected');
    expect(String((edit as PromiseRejectedResult).reason)).toMatch(/refused.*nested arrays/);
    expect(claim.status).toBe('fulfilled');
    expect((claim as PromiseFulfilledResult<unknown>).value).toMatchObject({ task: 'b', token: 1 });
    const snapshot = await snapshotOf(db().connection, name);
    expect(stateOf(snapshot, 'a')).toMatchObject({ status: 'pending', token: 0 });
    expect(stateOf(snapshot, 'b')).toMatchObject({ status: 'running', runnerId: 'me', token: 1 });
  });

  it('a value that closes the connection fails its own entry; the one beside it is written alone', async () => {
    if (!ferret()) return;
    // Its own connection: the server closing connections disturbs every operation of that client.
    const own = await mongoose.createConnection(db().uriWithDb).asPromise();
    onTestFinished(() => own.close());
    const store = await MongoStore.create(own, { writeRetryMs: 1_500, operationTimeoutMs: 2_000 });
    const name = uniqueName('closing');
    await store.createContainer({ name, failFast: false, definition: null });
    await store.addTasks(name, [task('a'), task('b')]);
    const [edit, claim] = await Promise.allSettled([
      store.settleTask(name, 'a', 0, { kind: 'edited', set: { output: { ratio: Number.NaN } } as never }),
      store.claimTask({ container: name, task: 'b', expectedToken: 0, claim: claimOf('me') }),
    ]);
    expect(edit.status).toBe('rejected');
    expect(claim.status).toBe('fulfilled');
    const snapshot = await snapshotOf(db().connection, name);
    expect(stateOf(snapshot, 'a')).toMatchObject({ status: 'pending', token: 0 });
    expect(stateOf(snapshot, 'b')).toMatchObject({ status: 'running', token: 1 });
  });

  it('a success whose entry landed is a success even when the reply was a write error: the position is read back', async () => {
    const store = await MongoStore.create(db().connection);
    const collection = (store as unknown as { m: { transitions: { collection: Record<string, unknown> } } }).m.transitions.collection;
    const real = (collection.insertMany as (...a: unknown[]) => Promise<unknown>).bind(collection);
    let faulted = 0;
    const runs: number[] = [];
    const name = uniqueName('landed');
    const def = defineContainer(name).task('a', { retries: 3 }, async (ctx) => {
      runs.push(ctx.attempt);
      collection.insertMany = async (...args: unknown[]) => {
        const r = await real(...args);
        if (faulted++ > 0) return r;
        // It landed, but the reply says the document was refused.
        throw Object.assign(new Error('invalid value (injected)'), { name: 'MongoBulkWriteError', code: 2, writeErrors: [{ index: 0, code: 2, errmsg: 'invalid value (injected)' }] });
      };
      return 'done';
    });
    try {
      const runner = await Runner.create({ store, container: def, ...fast });
      const events: string[] = [];
      for (const e of ['task:retry', 'task:failed', 'task:succeeded'] as const) runner.on(e, () => events.push(e));
      expect((await runner.run()).status).toBe('succeeded');
      expect(events).toEqual(['task:succeeded']);
      expect(runs).toEqual([1]);
      expect(faulted).toBeGreaterThanOrEqual(1);
      expect(stateOf(await snapshotOf(db().connection, name), 'a')).toMatchObject({ status: 'succeeded', output: 'done', failures: 0 });
    } finally {
      delete collection.insertMany;
    }
  });
});
