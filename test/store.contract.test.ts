/**
 * The TaskStore contract: what the engine relies on from any backend. Run
 * here against MongoStore on the real test server; a second backend would
 * call `storeContract` with its own factory.
 */
import mongoose from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TASK_OPTIONS, LeaseLostError, MongoStore, type NewTask, type TaskStore } from '../src/index.js';
import { databasePerFile } from './support/database.js';

const task = (name: string, dependsOn: string[] = []): NewTask => ({
  name,
  dependsOn,
  handler: name,
  input: null,
  options: DEFAULT_TASK_OPTIONS,
  dynamic: false,
  addedBy: null,
});

function storeContract(label: string, open: () => Promise<{ a: TaskStore; b: TaskStore; close(): Promise<void> }>) {
  describe(`TaskStore contract: ${label}`, () => {
    let a: TaskStore;
    let b: TaskStore;
    let close: () => Promise<void>;
    beforeAll(async () => {
      ({ a, b, close } = await open());
    });
    afterAll(() => close());

    it('racing createContainer calls create exactly one container', async () => {
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? a : b).createContainer({ name: 'race', failFast: true, definition: null }),
        ),
      );
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect((await a.listContainers()).filter((c) => c.name === 'race')).toHaveLength(1);
    });

    it('adds tasks idempotently by name', async () => {
      await a.createContainer({ name: 'adds', failFast: true, definition: null });
      expect(await a.addTasks('adds', [task('x'), task('y', ['x'])])).toEqual(['x', 'y']);
      expect(await b.addTasks('adds', [task('y'), task('z')])).toEqual(['z']);
      const snap = await a.loadSnapshot('adds');
      expect(snap!.tasks.map((t) => t.record.name)).toEqual(['x', 'y', 'z']);
      expect(snap!.tasks[1]!.record.dependsOn).toEqual(['x']);
    });

    it('concurrent claims of one task: exactly one wins', async () => {
      await a.createContainer({ name: 'claims', failFast: true, definition: null });
      await a.addTasks('claims', [task('t')]);
      for (let round = 0; round < 5; round++) {
        const token = (await a.loadSnapshot('claims'))!.tasks[0]!.state.token;
        const claims = await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            (i % 2 ? a : b).claimTask({ container: 'claims', task: 't', expectedToken: token, claim: { runnerId: `r${i}`, attempt: round + 1, leaseMs: 60_000, checkpoint: null } }),
          ),
        );
        const winners = claims.filter((c) => c !== null);
        expect(winners).toHaveLength(1);
        await a.finishAttempt(winners[0]!, { kind: 'released' });
      }
    });

    it('a lost claim hands back the claim that holds its position (the winner learnt without another read)', async () => {
      await a.createContainer({ name: 'learn', failFast: true, definition: null });
      await a.addTasks('learn', [task('t')]);
      const won = (await a.claimTask({ container: 'learn', task: 't', expectedToken: 0, claim: { runnerId: 'first', attempt: 1, leaseMs: 60_000, checkpoint: { at: 3 } } }))!;
      const seen: unknown[] = [];
      const lost = await b.claimTask({ container: 'learn', task: 't', expectedToken: 0, claim: { runnerId: 'second', attempt: 1, leaseMs: 60_000, checkpoint: null }, onTaken: (entry) => seen.push(entry) });
      expect(lost).toBeNull();
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ kind: 'claimed', task: 't', token: won.token, runnerId: 'first', attempt: 1, checkpoint: { at: 3 } });
      // A claim that wins hands back nothing.
      await a.finishAttempt(won, { kind: 'released' });
      const again = await b.claimTask({ container: 'learn', task: 't', expectedToken: won.token + 1, claim: { runnerId: 'second', attempt: 2, leaseMs: 60_000, checkpoint: null }, onTaken: (entry) => seen.push(entry) });
      expect(again).not.toBeNull();
      expect(seen).toHaveLength(1);
    });

    it('an attempt taken over can no longer write: progress, checkpoint and outcome are fenced', async () => {
      await a.createContainer({ name: 'fence', failFast: true, definition: null });
      await a.addTasks('fence', [task('t')]);
      const old = (await a.claimTask({ container: 'fence', task: 't', expectedToken: 0, claim: { runnerId: 'old', attempt: 1, leaseMs: 1, checkpoint: null } }))!;
      await a.updateAttempt(old, { checkpoint: { offset: 5 }, progress: 0.5 });
      // The lease expired; another runner takes over at the next position.
      const fresh = (await b.claimTask({ container: 'fence', task: 't', expectedToken: old.token, claim: {
        runnerId: 'new',
        attempt: 2,
        leaseMs: 60_000,
        checkpoint: { offset: 5 },
      } }))!;
      expect(fresh).not.toBeNull();
      await expect(a.updateAttempt(old, { checkpoint: { offset: 999 } })).rejects.toBeInstanceOf(LeaseLostError);
      await expect(a.finishAttempt(old, { kind: 'succeeded', output: 'stale' })).rejects.toBeInstanceOf(LeaseLostError);
      await b.updateAttempt(fresh, { checkpoint: { offset: 7 } });
      await b.finishAttempt(fresh, { kind: 'succeeded', output: 'fresh' });
      const state = (await a.loadSnapshot('fence'))!.tasks[0]!.state;
      expect(state).toMatchObject({ status: 'succeeded', output: 'fresh', attempt: 2, recoveries: 1, checkpoint: { offset: 7 } });
    });

    it('settling with a stale token fails and changes nothing', async () => {
      await a.createContainer({ name: 'settle', failFast: true, definition: null });
      await a.addTasks('settle', [task('t')]);
      expect(await a.settleTask('settle', 't', 0, { kind: 'skipped', reason: 'first' })).toBe(true);
      expect(await b.settleTask('settle', 't', 0, { kind: 'cancelled', reason: 'second' })).toBe(false);
      const state = (await b.loadSnapshot('settle'))!.tasks[0]!.state;
      expect(state).toMatchObject({ status: 'skipped', reason: 'first', token: 1 });
    });

    it('deleting a container removes its tasks and history', async () => {
      await a.createContainer({ name: 'gone', failFast: true, definition: null });
      await a.addTasks('gone', [task('t')]);
      await a.claimTask({ container: 'gone', task: 't', expectedToken: 0, claim: { runnerId: 'r', attempt: 1, leaseMs: 1000, checkpoint: null } });
      expect(await a.deleteContainer('gone')).toBe(true);
      expect(await a.deleteContainer('gone')).toBe(false);
      expect(await b.loadSnapshot('gone')).toBeNull();
      await a.createContainer({ name: 'gone', failFast: true, definition: null });
      expect((await a.loadSnapshot('gone'))!.tasks).toEqual([]);
    });
  });
}

const db = databasePerFile();

storeContract('MongoStore, two connections', async () => {
  const second = await mongoose.createConnection(db().uriWithDb).asPromise();
  return {
    a: await MongoStore.create(db().connection),
    b: await MongoStore.create(second),
    close: () => second.close(),
  };
});
