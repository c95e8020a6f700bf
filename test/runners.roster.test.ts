/**
 * The roster of runners (src/engine/roster.ts) on a real server: runners
 * joining at once get distinct places and learn of each other, a place
 * given back is taken again, and a runner silent for a lease loses its
 * place to the next runner that reads it, then joins again elsewhere.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import mongoose from 'mongoose';
import { afterAll, expect, it } from 'vitest';
import { Roster } from '../src/engine/roster.js';
import { MongoStore } from '../src/store/mongo/mongo-store.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
const connections: mongoose.Connection[] = [];
afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
});

/** A store on its own connection: requests of several reach the server at once. */
async function store(): Promise<MongoStore> {
  const c = await mongoose.createConnection(db().uriWithDb).asPromise();
  connections.push(c);
  return MongoStore.create(c);
}

/** A wall clock that tests move by hand (expiries are judged by it; renewals fall due by the monotonic clock). */
const clock = { at: Date.now(), now: () => clock.at };

async function rosters(container: string, ids: string[], leaseMs = 60_000): Promise<Roster[]> {
  return Promise.all(ids.map(async (runnerId) => new Roster(await store(), container, { runnerId, leaseMs, pollMs: 50, clock })));
}

it('runners joining at once take distinct places and learn of each other; a place given back is taken again', async () => {
  const all = await rosters('roster-join', ['A', 'B', 'C', 'D']);
  await Promise.all(all.map((r) => r.refresh()));
  // Distinct, whoever inserted first; the first takes place 0, and those
  // that lost a place try one of the few smallest left at random.
  const places = all.map((r) => r.place).sort((a, b) => a - b);
  expect(new Set(places).size, places.join()).toBe(4);
  expect(places[0]).toBe(0);
  expect(places.every((p) => p >= 0 && p < 16), places.join()).toBe(true);
  // One pollMs after joining, each reads the roster again and sees all four.
  await sleep(100);
  await Promise.all(all.map((r) => r.refresh()));
  for (const r of all) {
    expect(r.places).toEqual(places);
    expect([...r.runnerIds].sort()).toEqual(['A', 'B', 'C', 'D']);
  }
  // A place given back is free again: the next joiner takes the smallest free one.
  const gone = all.find((r) => r.place === places[1])!;
  const goneId = ['A', 'B', 'C', 'D'][all.indexOf(gone)]!;
  await gone.leave();
  expect(gone.place).toBe(-1);
  const left = places.filter((p) => p !== places[1]);
  let smallestFree = 0;
  while (left.includes(smallestFree)) smallestFree++;
  const [late] = await rosters('roster-join', ['E']);
  await late!.refresh();
  expect(late!.place).toBe(smallestFree);
  expect([...late!.runnerIds].sort()).toEqual(['A', 'B', 'C', 'D', 'E'].filter((id) => id !== goneId));
}, 60_000);

it('a runner silent for a whole lease loses its place to the next reader, and joins again when it wakes', async () => {
  const [a, b] = await rosters('roster-expiry', ['A', 'B'], 300);
  await a!.refresh();
  await b!.refresh();
  expect([a!.place, b!.place]).toEqual([0, 1]);
  // A renews; B is silent. Past B's lease (by the wall clock), A's next read evicts B's place.
  clock.at += 10_000;
  await sleep(150); // a third of the lease: A's renewal falls due
  await a!.refresh();
  expect(a!.places).toEqual([0]);
  expect(a!.runnerIds).toEqual(['A']);
  // B wakes: its renewal finds nothing, and it joins again at a free place.
  await b!.refresh();
  expect(b!.place).toBe(1);
  expect(b!.places).toEqual([0, 1]);
}, 60_000);
