/**
 * A slot's release and eviction delete only the acquisition they mean, even
 * when they race with each other and with the next acquisition of the same
 * slot. FerretDB v1 runs a filtered delete as a read, then a delete by
 * `_id` (not atomically): a release and an eviction of one acquisition
 * racing an insert of the next one under the same `_id` deleted the next
 * holder's slot, and a third runner got in beside it.
 */
import mongoose from 'mongoose';
import { afterAll, expect, it } from 'vitest';
import { MongoStore } from '../src/store/mongo/mongo-store.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
const connections: mongoose.Connection[] = [];
afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
});

/** Stores on their own connections: their requests reach the server at once. */
async function stores(n: number): Promise<MongoStore[]> {
  const out: MongoStore[] = [];
  for (let i = 0; i < n; i++) {
    const c = await mongoose.createConnection(db().uriWithDb).asPromise();
    connections.push(c);
    out.push(await MongoStore.create(c));
  }
  return out;
}

it('a release and an eviction racing the next acquisition of the slot never delete the next holder', async () => {
  const [a, releaser, evictor, next] = await stores(4);
  const container = 'slots-fencing';
  const slot = { scope: 'group:api', index: 0 };
  let lost = 0;
  let taken = 0;
  for (let round = 0; round < 150; round++) {
    const first = await a!.acquireSlots(container, [slot], { task: `t${round}`, token: 1, runnerId: 'A' });
    if (!('held' in first)) throw new Error(`round ${round}: slot not free: ${JSON.stringify(first.taken)}`);
    // Held: nobody else takes it, under whatever `_id`.
    const rival = await next!.acquireSlots(container, [slot], { task: `r${round}`, token: 1, runnerId: 'N' });
    expect(rival).toEqual({ taken: [{ ...slot, task: `t${round}`, token: 1, runnerId: 'A', nonce: first.held.nonce }] });
    const holding = { ...slot, task: `t${round}`, token: 1, runnerId: 'A', nonce: first.held.nonce };
    // The holder releases while another runner evicts the same acquisition,
    // and a third keeps trying to take the slot meanwhile.
    const acquireNext = async () => {
      for (let i = 0; i < 50; i++) {
        const got = await next!.acquireSlots(container, [slot], { task: `n${round}`, token: 1, runnerId: 'N' });
        if ('held' in got) return got.held;
      }
      return null;
    };
    const [, , held] = await Promise.all([releaser!.releaseSlots(first.held), evictor!.evictSlot(container, holding), acquireNext()]);
    if (!held) throw new Error(`round ${round}: the next runner never took the freed slot`);
    taken++;
    const there = await a!.readSlots(container, [slot]);
    if (there.length !== 1 || there[0]!.nonce !== held.nonce) lost++;
    await next!.releaseSlots(held);
    expect(await a!.readSlots(container, [slot])).toEqual([]);
  }
  expect(taken).toBe(150);
  expect(lost).toBe(0);
}, 120_000);

it('a rate token is taken once per (window, index), and the sweep deletes only tokens of windows that are over', async () => {
  const [a, b] = await stores(2);
  const container = 'slots-sweep';
  const over = { scope: 'rate:api:100', index: 0, expiresAt: new Date(Date.now() - 60_000) };
  const current = { scope: 'rate:api:101', index: 0, expiresAt: new Date(Date.now() + 60_000) };
  const global = { scope: 'group:api', index: 0 };
  expect('held' in (await a!.acquireSlots(container, [over], { task: 'x', token: 1, runnerId: 'A' }))).toBe(true);
  expect('held' in (await a!.acquireSlots(container, [current, global], { task: 'y', token: 1, runnerId: 'A' }))).toBe(true);
  // Another runner asking for the same token of the same window finds it taken (all or nothing: its other slot is not kept).
  const rival = await b!.acquireSlots(container, [{ scope: 'group:db', index: 0 }, current], { task: 'z', token: 1, runnerId: 'B' });
  expect('taken' in rival && rival.taken.map((h) => h.scope)).toEqual(['rate:api:101']);
  expect(await b!.readSlots(container, [{ scope: 'group:db', index: 0 }])).toEqual([]);
  expect(await b!.sweepSlots(container, new Date())).toBe(1);
  const left = await b!.readSlots(container, [over, current, global]);
  expect(left.map((h) => h.scope).sort()).toEqual(['group:api', 'rate:api:101']);
});
