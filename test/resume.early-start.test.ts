/**
 * A resumed runner starts tasks before its first full read has landed
 * (`EarlyStart`), and never one that the unread part of the log shows
 * finished or held. The full read is held back by a TCP proxy between the
 * runner process and the server (the replies of finds of the log by
 * filter); everything else goes through. The runner is a real process on a
 * real server; its handlers log each start to a file outside the engine.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../tools/tcp-proxy.js';
import { MongoStore, Runner } from '../src/index.js';
import { killChildrenAfterEach, makeTempDir, sideEffectLog, spawnTsChild } from './support/child.js';
import { databasePerFile, uriWithDb } from './support/database.js';
import { earlyContainer, pairsContainer } from './fixtures/early-resume-container.js';

const db = databasePerFile();
killChildrenAfterEach();
let proxy: TcpProxy;
beforeAll(async () => {
  const server = new URL(db().uri);
  proxy = await startTcpProxy({ port: Number(server.port), host: server.hostname });
});
afterAll(() => proxy?.close());

/** More tasks than a read by `_id` takes (64): the runner's full read is a find by filter. */
const TASKS = 150;

/** A find of the task log that is not by `_id`: the full read. */
const isFullLogRead = (command: Record<string, unknown>) =>
  command.find === 'pts_transitions' && !('_id' in ((command.filter as Record<string, unknown> | undefined) ?? {}));

describe('resume that starts before the whole log is read', () => {
  it('starts tasks shown free while the full read is held back, never one the unread log shows finished or held, and runs the rest once', async () => {
    const store = await MongoStore.create(db().connection);
    const container = earlyContainer(TASKS, async () => null);
    // Created (and its definition recorded applied) without running anything.
    await Runner.create({ store, container });
    // What the log holds that the resumed runner has not read: every third
    // task succeeded, and the next tasks of the first 60 held by a live
    // runner elsewhere (a lease far from over).
    const finished = new Set<string>();
    const held = new Set<string>();
    for (let i = 0; i < TASKS; i++) {
      const task = `t${i}`;
      if (i % 3 === 0) {
        const claim = (await store.claimTask({ container: 'early', task, expectedToken: 0, claim: { runnerId: 'before', attempt: 1, leaseMs: 60_000, checkpoint: null } }))!;
        await store.finishAttempt(claim, { kind: 'succeeded', output: 'before' });
        finished.add(task);
      } else if (i % 3 === 1 && i < 60) {
        await store.claimTask({ container: 'early', task, expectedToken: 0, claim: { runnerId: 'elsewhere', attempt: 1, leaseMs: 600_000, heartbeatMs: 60_000, checkpoint: null } });
        held.add(task);
      }
    }
    const free = Array.from({ length: TASKS }, (_, i) => `t${i}`).filter((t) => !finished.has(t) && !held.has(t));

    proxy.holdReplies(isFullLogRead);
    const log = sideEffectLog<{ event: string; task: string; attempt: number }>(path.join(makeTempDir(), 'effects.jsonl'));
    const uri = uriWithDb(`mongodb://127.0.0.1:${proxy.port}/`, db().dbName);
    const child = spawnTsChild('test/fixtures/early-resume-child.ts', [], {
      MONGODB_URI: `${uri}${uri.includes('?') ? '&' : '?'}directConnection=true`,
      LOG: log.path,
      TASKS: String(TASKS),
    });
    // Work starts while the whole log is still unread.
    for (let n = 0; n < 12; n++) await child.waitForLine(/^started /, 60_000);
    expect(proxy.heldReplies, 'the full read was held back all along').toBeGreaterThan(0);
    const early = log.read().filter((e) => e.event === 'start');
    expect(early.length).toBeGreaterThanOrEqual(12);
    for (const e of early) {
      expect(finished.has(e.task), `${e.task} had succeeded`).toBe(false);
      expect(held.has(e.task), `${e.task} was held elsewhere`).toBe(false);
    }

    // The full read lands: the runner goes on from the whole picture.
    proxy.releaseHeld();
    const deadline = Date.now() + 120_000;
    while (new Set(log.read().map((e) => e.task)).size < free.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    // The held tasks' leases keep the run from ending: stop the process.
    await child.kill('SIGKILL');
    const starts = log.read().filter((e) => e.event === 'start');
    for (const task of free) expect(starts.filter((e) => e.task === task), `${task} starts`).toHaveLength(1);
    for (const e of starts) {
      expect(finished.has(e.task), `${e.task} had succeeded`).toBe(false);
      expect(held.has(e.task), `${e.task} was held elsewhere`).toBe(false);
    }
    const snap = (await store.loadSnapshot('early'))!;
    for (const task of finished) expect(snap.tasks.find((t) => t.record.name === task)!.state.output).toBe('before');
  });

  it('starts tasks whose dependencies the log shows succeeded while the full read is held back, never one whose dependency has not succeeded, nor one finished or held', async () => {
    const PAIRS = 72;
    const store = await MongoStore.create(db().connection);
    await Runner.create({ store, container: pairsContainer(PAIRS, async () => null) });
    const at = (name: string, runnerId: string, leaseMs: number) =>
      store.claimTask({ container: 'pairs', task: name, expectedToken: 0, claim: { runnerId, attempt: 1, leaseMs, heartbeatMs: 60_000, checkpoint: null } });
    const succeed = async (name: string) => void (await store.finishAttempt((await at(name, 'before', 60_000))!, { kind: 'succeeded', output: 'before' }));
    // What the unread log holds, by i % 6: 0 `a` succeeded (so `b` may start
    // early), 1 both succeeded, 2 `a` succeeded and `b` held by a live runner
    // elsewhere, 3 `a` held, 4 `a` failed and waiting an hour for its retry,
    // 5 nothing (`a` runs here, then `b`).
    const never = new Set<string>();
    const early = new Set<string>();
    const free = new Set<string>();
    for (let i = 0; i < PAIRS; i++) {
      const [a, b] = [`a${i}`, `b${i}`];
      switch (i % 6) {
        case 0:
          await succeed(a);
          early.add(b);
          free.add(b);
          break;
        case 1:
          await succeed(a);
          await succeed(b);
          never.add(a).add(b);
          break;
        case 2:
          await succeed(a);
          await at(b, 'elsewhere', 600_000);
          never.add(a).add(b);
          break;
        case 3:
          await at(a, 'elsewhere', 600_000);
          never.add(a).add(b);
          break;
        case 4: {
          const claim = (await at(a, 'before', 60_000))!;
          const error = { name: 'Error', message: 'once', code: null, stack: null, attempt: 1, at: new Date() };
          await store.finishAttempt(claim, { kind: 'failed', error, retryAt: new Date(Date.now() + 3_600_000) });
          never.add(a).add(b);
          break;
        }
        default:
          free.add(a).add(b);
      }
    }

    proxy.holdReplies(isFullLogRead);
    const log = sideEffectLog<{ event: string; task: string; deps: Record<string, unknown> }>(path.join(makeTempDir(), 'effects.jsonl'));
    const uri = uriWithDb(`mongodb://127.0.0.1:${proxy.port}/`, db().dbName);
    const child = spawnTsChild('test/fixtures/early-resume-child.ts', [], {
      MONGODB_URI: `${uri}${uri.includes('?') ? '&' : '?'}directConnection=true`,
      LOG: log.path,
      TASKS: String(2 * PAIRS),
      NAME: 'pairs',
      SHAPE: 'pairs',
    });
    // Tasks with a dependency start while the whole log is still unread.
    for (let n = 0; n < 6; n++) await child.waitForLine(/^started b/, 60_000);
    expect(proxy.heldReplies, 'the full read was held back all along').toBeGreaterThan(0);
    const judge = (starts: Array<{ task: string; deps: Record<string, unknown> }>) => {
      for (const [k, e] of starts.entries()) {
        expect(never.has(e.task), `${e.task} had finished, was held, or has a dependency that had not succeeded`).toBe(false);
        if (!e.task.startsWith('b')) continue;
        const a = `a${e.task.slice(1)}`;
        // The dependency's output: the one in the log before, or the one it made here, before this start.
        if (early.has(e.task)) expect(e.deps).toEqual({ [a]: 'before' });
        else {
          expect(e.deps).toEqual({ [a]: a });
          expect(starts.slice(0, k).some((s) => s.task === a), `${a} ran before ${e.task}`).toBe(true);
        }
      }
    };
    const before = log.read().filter((e) => e.event === 'start');
    expect(before.filter((e) => e.task.startsWith('b')).length).toBeGreaterThanOrEqual(6);
    judge(before);

    // The full read lands: the runner goes on from the whole picture.
    proxy.releaseHeld();
    const deadline = Date.now() + 120_000;
    while (new Set(log.read().map((e) => e.task)).size < free.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    // The held tasks' leases (and a retry an hour away) keep the run from ending: stop the process.
    await child.kill('SIGKILL');
    const starts = log.read().filter((e) => e.event === 'start');
    judge(starts);
    for (const task of free) expect(starts.filter((e) => e.task === task), `${task} starts`).toHaveLength(1);
    const snap = (await store.loadSnapshot('pairs'))!;
    for (const t of snap.tasks) if (never.has(t.record.name) && t.state.status === 'succeeded') expect(t.state.output).toBe('before');
  });

  it('does not start early in a fail-fast container where a task failed for good: nothing starts, the run fails', async () => {
    const store = await MongoStore.create(db().connection);
    await Runner.create({ store, container: earlyContainer(TASKS, async () => null, 'failed') });
    const claim = (await store.claimTask({ container: 'failed', task: 't5', expectedToken: 0, claim: { runnerId: 'before', attempt: 1, leaseMs: 60_000, checkpoint: null } }))!;
    await store.finishAttempt(claim, { kind: 'failed', error: { name: 'Error', message: 'for good', code: null, stack: null, attempt: 1, at: new Date() }, retryAt: null });

    proxy.holdReplies(isFullLogRead);
    const log = sideEffectLog<{ event: string; task: string }>(path.join(makeTempDir(), 'effects.jsonl'));
    const uri = uriWithDb(`mongodb://127.0.0.1:${proxy.port}/`, db().dbName);
    const child = spawnTsChild('test/fixtures/early-resume-child.ts', [], {
      MONGODB_URI: `${uri}${uri.includes('?') ? '&' : '?'}directConnection=true`,
      LOG: log.path,
      TASKS: String(TASKS),
      NAME: 'failed',
    });
    // The full read is under way and held; give an early start ample time to show itself.
    const deadline = Date.now() + 60_000;
    while (proxy.heldReplies === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(proxy.heldReplies).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 3000));
    expect(log.read()).toEqual([]);
    proxy.releaseHeld();
    await child.waitForLine('done failed', 120_000);
    expect(log.read()).toEqual([]);
  });
});
