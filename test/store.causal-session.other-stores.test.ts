/**
 * The schedule and ledger stores' causal sessions, as the task store's
 * (test/store.causal-session.test.ts): every read carries the causal point
 * of the store's earlier writes (`afterClusterTime`), so after a failover a
 * scheduler cannot miss its own slot claims, nor a run its own recorded file
 * or claim. Operation times are injected by a proxy (see
 * test/support/causal-proxy.ts).
 */
import mongoose, { type Connection } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoScheduleStore } from '../src/index.js';
import { MongoLedgerStore } from '../src/store/mongo/ledger-store.js';
import { expectReadsAfter, openCausalProxy, type CausalProxy } from './support/causal-proxy.js';
import { databasePerFile, testMongoKind } from './support/database.js';

const db = databasePerFile();
let proxy: CausalProxy;
beforeAll(async () => {
  proxy = await openCausalProxy(db());
});
afterAll(() => proxy?.close());

const { Timestamp } = mongoose.mongo;
const slotAt = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute));
const newSlot = (minute: number) => ({ schedule: 'nightly', slot: slotAt(minute), container: `nightly-${minute}`, state: 'queued' as const, reason: null, claimedBy: 'me' });
const entry = (id: string) => ({ id, ledger: 'epf', url: `https://feed.example/${id}.tbz`, size: 10, checksum: 'c', recordedAt: new Date(1_000), info: null });

describe('schedule store causal session', () => {
  it("reads after a slot claim carry its operation time as afterClusterTime, and the same lsid is never in flight twice", async () => {
    const store = await MongoScheduleStore.create(proxy.conn, { causalConsistency: 'always' });
    await store.openHead('nightly', slotAt(0));
    const opTime = new Timestamp({ t: 4_000_000_001, i: 3 });
    await proxy.withOperationTime((command) => command.insert === 'pts_schedule_slots', opTime, async () => {
      expect(await Promise.all([store.claimSlot(newSlot(1)), store.claimSlot(newSlot(2))])).toEqual([true, true]);
      proxy.reset();
      const [one, all, open, head] = await Promise.all([
        store.getSlot('nightly', slotAt(1)),
        store.listSlots('nightly'),
        store.listOpenSlots('nightly'),
        store.getHead('nightly'),
        store.listHeads(),
      ]);
      expect(one?.container).toBe('nightly-1');
      expect(all.map((s) => s.container)).toEqual(['nightly-1', 'nightly-2']);
      expect(open).toHaveLength(2);
      expect(head?.cursor).toEqual(slotAt(0));
    });
    expectReadsAfter(proxy.started, opTime);
    expect(proxy.maxInFlight).toBe(1); // concurrent operations, each in its own driver session
  });

  it("every operation of a slot's life runs in the store's session, and works on the test server (gated updates included)", async () => {
    const store = await MongoScheduleStore.create(proxy.conn, { causalConsistency: 'always' });
    await store.openHead('weekly', slotAt(0));
    proxy.reset();
    const slot = { ...newSlot(5), schedule: 'weekly', container: 'weekly-5' };
    expect(await store.claimSlot(slot)).toBe(true);
    expect(await store.claimContainer('weekly-5', 'weekly@5')).toEqual({ owner: 'weekly@5', inserted: true });
    await store.markSlotStarted('weekly', slot.slot);
    expect(await store.requestTrigger('weekly', { requestedAt: new Date(1_000), requestedBy: 'cli' })).toBe(true);
    await store.advanceHead('weekly', slotAt(5));
    await store.finishSlot('weekly', slot.slot, 'succeeded');
    expect(await store.releaseContainers(['weekly-5'])).toBe(1);
    expect(await store.deleteEndedSlots('weekly', slotAt(6))).toBe(1);
    // Every operation ran in a session of the store's own (each retry try in one more).
    expect(proxy.causalSessions).toBeGreaterThanOrEqual(8);
    expect((await store.getHead('weekly'))?.cursor).toEqual(slotAt(5));
    expect(await store.getSlot('weekly', slot.slot)).toBeNull();
  });
});

describe('ledger store causal session', () => {
  it('reads after entries are recorded carry their operation time as afterClusterTime, and the same lsid is never in flight twice', async () => {
    const store = await MongoLedgerStore.create(proxy.conn, { causalConsistency: 'always' });
    const opTime = new Timestamp({ t: 4_000_000_002, i: 5 });
    expect(await store.insertClaim({ key: 'c', generation: 1, ledger: 'epf', holder: 'run-1', leaseMs: 60_000 })).toBe(true);
    // The point is the store's: the entries' times carry over to the claim read too. (Only reads follow:
    // the driver sends afterClusterTime on writes as well, which MongoDB accepts and FerretDB v1 refuses.)
    await proxy.withOperationTime((command) => command.insert === 'pts_ledger', opTime, async () => {
      expect(await Promise.all([store.insertEntry(entry('a')), store.insertEntry(entry('b'))])).toEqual([true, true]);
      proxy.reset();
      const [found, ids, all, claim, released] = await Promise.all([
        store.findEntries(['a', 'b', 'x']),
        store.findIds(['a', 'x']),
        store.listEntries('epf'),
        store.getClaim('c', 1),
        store.releaseClaimsOf('epf', 'someone-else'),
      ]);
      expect(found.map((e) => e.id).sort()).toEqual(['a', 'b']);
      expect([...ids]).toEqual(['a']);
      expect(all).toHaveLength(2);
      expect(claim?.holder).toBe('run-1');
      expect(released).toBe(0);
    });
    expectReadsAfter(proxy.started, opTime);
    expect(proxy.maxInFlight).toBe(1); // concurrent operations, each in its own driver session
  });

  it("every operation of a claim's and an entry's life runs in the store's session, and works on the test server", async () => {
    const store = await MongoLedgerStore.create(proxy.conn, { causalConsistency: 'always' });
    proxy.reset();
    expect(await store.insertClaim({ key: 'd', generation: 1, ledger: 'life', holder: 'run-2', leaseMs: 60_000 })).toBe(true);
    expect(await store.renewClaim('d', 1, 'run-2')).toBe(true);
    expect(await store.insertEntry({ ...entry('d'), ledger: 'life' })).toBe(true);
    expect(await store.insertEntry({ ...entry('d'), ledger: 'life' })).toBe(false);
    // Over 256 ids FerretDB v1 reads the collection's ids in one cursor: in the session too.
    expect([...(await store.findIds([...Array.from({ length: 300 }, (_, i) => `n${i}`), 'd']))]).toEqual(['d']);
    await store.releaseClaim('d', 1, 'run-2');
    expect((await store.getClaim('d', 1))?.released).toBe(true);
    expect(await store.deleteClaimsOfRecorded('life')).toBe(1);
    expect(await store.deleteEntries('life')).toBe(1);
    // Every operation ran in a session of the store's own (each retry try in one more).
    expect(proxy.causalSessions).toBeGreaterThanOrEqual(9);
  });
});

const stores: Array<[string, (conn: Connection, o?: { causalConsistency?: 'auto' | 'always' | 'never' }) => Promise<unknown>]> = [
  ['schedule', (conn, o) => MongoScheduleStore.create(conn, o)],
  ['ledger', (conn, o) => MongoLedgerStore.create(conn, o)],
];

describe.each(stores)('%s store causal option', (_name, create) => {
  it("'auto' uses no causal session on the test server when it is FerretDB or a standalone (measured with hello)", async () => {
    const hello = (await proxy.conn.db!.admin().command({ hello: 1 })) as { setName?: string };
    const causal = ((await create(proxy.conn)) as { ops: { causal: unknown } }).ops.causal;
    if (testMongoKind() === 'ferretdb') expect(hello.setName).toBeUndefined();
    expect(causal === null).toBe(hello.setName === undefined);
  });

  it('refuses an unknown causalConsistency value, naming the option', async () => {
    await expect(create(proxy.conn, { causalConsistency: 'sometimes' as never })).rejects.toThrow(/causalConsistency/);
  });
});
