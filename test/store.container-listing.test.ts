/**
 * The container listing behind the dashboard's list (src/store/mongo/listing.ts,
 * container-list.ts): every container is listed exactly once, newest first,
 * when real processes create containers at once (some under the same name),
 * when a process is SIGKILLed between its listing entry and its container
 * document, and for containers made before the listing existed. Filters
 * examine a bounded number of containers per page and go on with `next`.
 */
import mongoose from 'mongoose';
import { describe, expect, it } from 'vitest';
import { MongoStore } from '../src/index.js';
import type { ContainerPageQuery, ContainerRecord } from '../src/store/types.js';
import { killChildrenAfterEach, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
killChildrenAfterEach();

/** Follows `next` to the end; returns every container listed, in order, and the pages' sizes. */
async function listAll(store: MongoStore, query: Omit<ContainerPageQuery, 'after'>): Promise<{ names: string[]; pages: number[] }> {
  const names: string[] = [];
  const pages: number[] = [];
  let after: ContainerPageQuery['after'] = null;
  for (let i = 0; i < 2000; i++) {
    const page = await store.listContainerPage({ ...query, after });
    expect(page.examined).toBeLessThanOrEqual(query.examine ?? query.limit * 8);
    names.push(...page.containers.map((c: ContainerRecord) => c.name));
    pages.push(page.containers.length);
    if (!page.next) return { names, pages };
    after = page.next;
  }
  throw new Error('the list did not end within 2,000 pages');
}

type RawContainer = { _id: string; listing?: number; deletedAt?: Date | null; status: string };
const rawContainers = () => db().connection.collection<RawContainer>('pts_containers').find({}).toArray();
const entriesOf = async (prefix: string) =>
  (await db().connection.collection<{ _id: string; seq: number; container: string }>('pts_listing').find({}).toArray()).filter((e) => e._id.startsWith(prefix));
const rawEntries = () => entriesOf('["listing",');

function createInChild(names: string[], env: Record<string, string> = {}) {
  return spawnTsChild('test/fixtures/container-create-child.ts', [], { MONGODB_URI: db().uriWithDb, NAMES: names.join(','), ...env });
}

const range = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(2, '0')}`);

describe('the container listing', () => {
  it('lists each container exactly once, newest first, when two processes create containers at once (some under the same names)', async () => {
    const shared = range('shared-', 10);
    const a = createInChild([...range('proc-a-', 30), ...shared], { PARALLEL: '4' });
    const b = createInChild([...shared, ...range('proc-b-', 30)], { PARALLEL: '4' });
    await Promise.all([a.waitForLine('done', 120_000), b.waitForLine('done', 120_000)]);
    // Each shared name was created by exactly one of the two.
    const createdShared = [...a.lines, ...b.lines].filter((l) => /^created shared-\d+ true$/.test(l));
    expect(createdShared).toHaveLength(shared.length);

    const store = await MongoStore.create(db().connection);
    const { names } = await listAll(store, { limit: 7 });
    const docs = (await rawContainers()).filter((d) => !d.deletedAt);
    expect(new Set(names).size).toBe(names.length);
    expect([...names].sort()).toEqual(docs.map((d) => d._id).sort());
    // Newest first: in the order of the entries, which are numbered 0..end-1 without a gap.
    const seqOf = new Map(docs.map((d) => [d._id, d.listing!]));
    const seqs = names.map((n) => seqOf.get(n)!);
    expect(seqs).toEqual([...seqs].sort((x, y) => y - x));
    const entries = (await rawEntries()).map((e) => e.seq).sort((x, y) => x - y);
    expect(entries).toEqual(entries.map((_, i) => i));
    // A name race leaves at most a dead entry (the loser's), never a second listing.
    expect(entries.length).toBeGreaterThanOrEqual(docs.length);
    // The first read copied full runs of entries into blocks; a second read from the copies lists the same.
    expect(await db().connection.collection('pts_listing').findOne({ _id: JSON.stringify(['block', 0]) as never })).not.toBeNull();
    expect((await listAll(await MongoStore.create(db().connection), { limit: 9 })).names).toEqual(names);
  }, 180_000);

  it('a process SIGKILLed between the listing entry and the container document leaves nothing listed, and the name can be created and listed once', async () => {
    const cut = createInChild(['cut-after-entry'], { CUT_AFTER_WRITES: '1' });
    expect((await cut.waitForExit(60_000)).signal).toBe('SIGKILL');
    expect((await rawEntries()).some((e) => e.container === 'cut-after-entry')).toBe(true);
    expect((await rawContainers()).some((d) => d._id === 'cut-after-entry')).toBe(false);

    const store = await MongoStore.create(db().connection);
    expect((await listAll(store, { limit: 5 })).names).not.toContain('cut-after-entry');
    expect((await store.createContainer({ name: 'cut-after-entry', failFast: false, definition: [] })).created).toBe(true);
    const { names } = await listAll(store, { limit: 5 });
    expect(names.filter((n) => n === 'cut-after-entry')).toHaveLength(1);
    expect(names[0]).toBe('cut-after-entry');

    // Cut after both writes: listed, once.
    const whole = createInChild(['cut-after-both'], { CUT_AFTER_WRITES: '2' });
    expect((await whole.waitForExit(60_000)).signal).toBe('SIGKILL');
    const again = await listAll(store, { limit: 5 });
    expect(again.names.filter((n) => n === 'cut-after-both')).toHaveLength(1);
  }, 120_000);

  it('a deleted container and one deleted and made again are listed as they are now', async () => {
    const store = await MongoStore.create(db().connection);
    for (const name of ['gone', 'again', 'kept']) await store.createContainer({ name, failFast: false, definition: [] });
    await store.deleteContainer('gone');
    await store.deleteContainer('again');
    await store.createContainer({ name: 'again', failFast: false, definition: [] });
    const { names } = await listAll(store, { limit: 3 });
    expect(names).not.toContain('gone');
    expect(names.filter((n) => n === 'again')).toHaveLength(1);
    expect(names.indexOf('again')).toBeLessThan(names.indexOf('kept'));
  });

  it('filters examine a bounded number of containers per page and go on with next until every match is found', async () => {
    const store = await MongoStore.create(db().connection);
    const names = range('filter-', 40);
    for (const name of names) await store.createContainer({ name, failFast: false, definition: [] });
    for (const name of ['filter-03', 'filter-17', 'filter-31']) await store.finishContainer(name, 'failed');
    const failed = await listAll(store, { limit: 25, status: 'failed', examine: 30 });
    expect(failed.names).toEqual(['filter-31', 'filter-17', 'filter-03']);
    // The running ones walk the listing: pages come back short (or empty) with a cursor, the budget held.
    const running = await listAll(store, { limit: 25, status: 'running', namePrefix: 'filter-', examine: 30 });
    expect(running.names).toEqual(names.filter((n) => !['filter-03', 'filter-17', 'filter-31'].includes(n)).reverse());
    expect(running.pages.some((n) => n < 25)).toBe(true);
    const prefixed = await listAll(store, { limit: 4, namePrefix: 'filter-1', examine: 8 });
    expect(prefixed.names).toEqual(names.filter((n) => n.startsWith('filter-1')).reverse());
    // A whole name is found at once, by its `_id`, on the first page.
    const exact = await store.listContainerPage({ limit: 25, namePrefix: 'filter-05', examine: 25 });
    expect(exact.containers.map((c) => c.name)).toEqual(['filter-05']);
  }, 120_000);

  it('containers made before the listing existed come after the listed ones, until none is left', async () => {
    // A database of an older version: its own collections, a container without a listing entry.
    const now = new Date();
    await db().connection.collection('old_containers').insertOne({
      _id: 'made-by-an-older-version' as never,
      status: 'failed',
      failFast: false,
      definition: null,
      createdAt: new Date(now.getTime() + 60_000),
      updatedAt: now,
      finishedAt: now,
      cancelRequestedAt: null,
      incarnation: 'old',
      deletedAt: null,
    });
    const store = await MongoStore.create(db().connection, { collectionPrefix: 'old' });
    // Before any container has an entry, the first page is filled from the unlisted ones.
    expect((await store.listContainerPage({ limit: 25 })).containers.map((c) => c.name)).toEqual(['made-by-an-older-version']);
    for (const name of range('new-', 8)) await store.createContainer({ name, failFast: false, definition: [] });
    const all = await listAll(store, { limit: 3 });
    expect(all.names).toEqual([...range('new-', 8).reverse(), 'made-by-an-older-version']);
    expect((await listAll(store, { limit: 3, status: 'failed' })).names).toEqual(['made-by-an-older-version']);
    expect((await listAll(store, { limit: 3, namePrefix: 'made-' })).names).toEqual(['made-by-an-older-version']);
    await store.deleteContainer('made-by-an-older-version');
    expect((await listAll(store, { limit: 3 })).names).toEqual(range('new-', 8).reverse());
    // None left: the first read that found none left its marker, and later lists end without a scan.
    expect(await db().connection.collection('old_listing').findOne({ _id: JSON.stringify(['all-listed']) as never })).not.toBeNull();
  }, 60_000);

  it('pages, filters and searches with exact-_id finds only, no more of them with 600 older containers', async () => {
    const connection = await mongoose.createConnection(db().uriWithDb, { monitorCommands: true }).asPromise();
    let finds: unknown[] | null = null;
    connection.getClient().on('commandStarted', (e) => {
      if (finds && ['find', 'aggregate', 'count', 'distinct'].includes(e.commandName)) finds.push(e.command.filter ?? e.command.pipeline ?? e.command.query);
    });
    const counted = async (read: () => Promise<unknown>) => {
      finds = [];
      await read();
      const out = finds;
      finds = null;
      return out;
    };
    const exactId = (f: unknown) => !!f && typeof f === 'object' && Object.keys(f).length === 1 && typeof (f as { _id?: unknown })._id === 'string';
    try {
      const store = await MongoStore.create(connection, { collectionPrefix: 'flat' });
      const make = async (prefix: string, n: number) => {
        for (let i = 0; i < n; i += 20) {
          await Promise.all(Array.from({ length: Math.min(20, n - i) }, (_, j) => store.createContainer({ name: `${prefix}${String(i + j).padStart(4, '0')}`, failFast: false, definition: null })));
        }
      };
      await make('young-', 40);
      const reads = {
        first: () => store.listContainerPage({ limit: 25 }),
        status: () => store.listContainerPage({ limit: 25, status: 'running' }),
        search: () => store.listContainerPage({ limit: 25, namePrefix: 'young-001' }),
      };
      const before: Record<string, number> = {};
      for (const [name, read] of Object.entries(reads)) {
        await read(); // the first read of a process finds the end and copies full blocks
        const f = await counted(read);
        expect(f.filter((x) => !exactId(x)), name).toEqual([]);
        before[name] = f.length;
      }
      await make('old-', 600);
      await make('young-again-', 40);
      for (const [name, read] of Object.entries(reads)) {
        await read();
        const f = await counted(read);
        expect(f.filter((x) => !exactId(x)), name).toEqual([]);
        // The end probe, at most 31 entries not in a full block, a few blocks, the page's containers.
        expect(f.length, name).toBeLessThanOrEqual(Math.max(before[name]!, 1) + 32);
        expect(f.length, name).toBeLessThanOrEqual(2 + 31 + 8 + 2 * 25);
      }
    } finally {
      await connection.close();
    }
  }, 300_000);

  it('a final status lists each container once, in the order they reached it, through retries and two processes finishing at once', async () => {
    const store = await MongoStore.create(db().connection);
    const a = createInChild(range('fin-a-', 15), { PARALLEL: '4', FINISH: 'failed' });
    const b = createInChild(range('fin-b-', 15), { PARALLEL: '4', FINISH: 'failed' });
    await Promise.all([a.waitForLine('done', 120_000), b.waitForLine('done', 120_000)]);
    // Failed, reopened (a retry), failed again: once. Failed, reopened, succeeded: under succeeded only.
    for (const name of ['fin-a-00', 'fin-b-00']) await store.reopenContainer(name);
    await store.finishContainer('fin-a-00', 'failed');
    await store.finishContainer('fin-b-00', 'succeeded');
    await store.finishContainer('fin-b-00', 'succeeded'); // idempotent: no second entry
    const failed = (await listAll(store, { limit: 7, status: 'failed', namePrefix: 'fin-' })).names;
    expect(new Set(failed).size).toBe(failed.length);
    expect([...failed].sort()).toEqual([...range('fin-a-', 15), ...range('fin-b-', 15)].filter((n) => n !== 'fin-b-00').sort());
    expect(failed[0]).toBe('fin-a-00');
    expect((await listAll(store, { limit: 7, status: 'succeeded', namePrefix: 'fin-' })).names).toEqual(['fin-b-00']);
    const seqs = (await entriesOf('["status","failed",')).map((e) => e.seq).sort((x, y) => x - y);
    expect(seqs).toEqual(seqs.map((_, i) => i));
    expect((await entriesOf('["status","succeeded",')).filter((e) => e.container === 'fin-b-00')).toHaveLength(1);
  }, 180_000);

  it('finishContainer SIGKILLed between its status entry and the status leaves the container as it was; the next finish lists it once', async () => {
    const store = await MongoStore.create(db().connection);
    await store.createContainer({ name: 'cut-finish', failFast: false, definition: [] });
    const cut = createInChild(['cut-finish'], { FINISH: 'cancelled', CUT_AFTER_WRITES: '1' });
    expect((await cut.waitForExit(60_000)).signal).toBe('SIGKILL');
    expect((await entriesOf('["status","cancelled",')).some((e) => e.container === 'cut-finish')).toBe(true);
    expect((await store.readContainerHead('cut-finish'))!.record.status).toBe('running');
    expect((await listAll(store, { limit: 5, status: 'cancelled' })).names).not.toContain('cut-finish');
    expect((await listAll(store, { limit: 5, status: 'running' })).names).toContain('cut-finish');
    await store.finishContainer('cut-finish', 'cancelled');
    expect((await listAll(store, { limit: 5, status: 'cancelled' })).names.filter((n) => n === 'cut-finish')).toHaveLength(1);
  }, 120_000);
});
