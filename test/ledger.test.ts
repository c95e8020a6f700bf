import { createHash } from 'node:crypto';
import mongoose from 'mongoose';
import { describe, expect, it } from 'vitest';
import { InvalidLedgerItemError, Ledger, ValidationError } from '../src/index.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
const open = (name: string) => Ledger.create({ connection: db().connection, name });
const file = (name: string, size: number, checksum: string) => ({ url: `https://feed.example/v5/${name}`, size, checksum });

describe('ledger', () => {
  it('remembers a recorded item by url, size and checksum together', async () => {
    const ledger = await open('keys');
    const item = file('itunes20261129/application.tbz', 1_234_567, 'd41d8cd98f00b204e9800998ecf8427e');
    expect(await ledger.has(item)).toBe(false);
    expect((await ledger.record(item, { rows: 42 })).recorded).toBe(true);
    expect(await ledger.has(item)).toBe(true);
    expect(await ledger.has({ ...item, checksum: item.checksum.toUpperCase() })).toBe(true); // md5 hex is case-insensitive
    expect(await ledger.has({ ...item, checksum: '0cc175b9c0f1b6a831c399e269772661' })).toBe(false); // re-posted content
    expect(await ledger.has({ ...item, size: item.size + 1 })).toBe(false);
    expect(await ledger.has({ ...item, url: `${item.url}?v=2` })).toBe(false);
    const [entry] = await ledger.list();
    expect(entry).toMatchObject({ ledger: 'keys', url: item.url, size: item.size, checksum: item.checksum, info: { rows: 42 } });
  });

  it('an item applied over a basis is new again over another basis; without one its key is unchanged', async () => {
    const ledger = await open('basis');
    const plainItem = file('incremental/current/itunes20261130/application.tbz', 4_096, 'c4ca4238a0b923820dcc509a6f75849b');
    // The key of an item without basis is what it was before the field existed: sha256 of [ledger, url, size, checksum].
    const legacy = createHash('sha256').update(JSON.stringify(['basis', plainItem.url, plainItem.size, plainItem.checksum])).digest('hex');
    expect(ledger.keyOf(plainItem)).toBe(legacy);
    const overFirst = { ...plainItem, basis: '/v5/current/itunes20261129/application.tbz@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' };
    const overReposted = { ...plainItem, basis: '/v5/current/itunes20261129/application.tbz@bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb' };
    await ledger.record(overFirst);
    expect(await ledger.has(overFirst)).toBe(true);
    expect(await ledger.has(overReposted)).toBe(false); // the full under it was re-posted: apply it again
    expect(await ledger.has(plainItem)).toBe(false);
    expect(await ledger.filterNew([overFirst, overReposted])).toEqual([overReposted]);
    expect((await ledger.list())[0]).toMatchObject({ url: plainItem.url, basis: overFirst.basis });
    const error = await ledger.record({ ...plainItem, basis: '' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidLedgerItemError);
  });

  it('records idempotently: racing and repeated records keep one entry', async () => {
    const ledger = await open('idempotent');
    const item = file('incremental/current/song.tbz', 99, '"etag-abc-1"');
    const results = await Promise.all(Array.from({ length: 5 }, () => ledger.record(item)));
    expect(results.filter((r) => r.recorded)).toHaveLength(1);
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    expect((await ledger.record(item, { late: true })).recorded).toBe(false);
    const entries = await ledger.list();
    expect(entries).toHaveLength(1);
    expect(entries[0]!.info).toBeNull(); // info of the first record only
  });

  it('filterNew returns the unrecorded items in order; a failed item is new again next time', async () => {
    const ledger = await open('hourly');
    const a = file('a.tbz', 10, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
    const b = file('b.tbz', 20, 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb');
    const c = file('c.tbz', 30, 'cccccccccccccccccccccccccccccccc');
    // Slot 1: a and c succeed, b fails (so it is never recorded).
    expect(await ledger.filterNew([a, b, c])).toEqual([a, b, c]);
    await ledger.record(a);
    await ledger.record(c);
    // Slot 2: only b is left, plus c re-posted with new content.
    const c2 = { ...c, checksum: 'dddddddddddddddddddddddddddddddd' };
    expect(await ledger.filterNew([a, b, c, c2, b])).toEqual([b, c2]);
  });

  it('keeps ledgers of different names apart', async () => {
    const one = await open('one');
    const two = await open('two');
    const item = file('x.tbz', 1, 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee');
    await one.record(item);
    expect(await one.has(item)).toBe(true);
    expect(await two.has(item)).toBe(false);
    expect(await two.list()).toEqual([]);
  });

  it('rejects malformed items with a typed error and writes nothing', async () => {
    const ledger = await open('invalid');
    const bad = [
      { url: '', size: 1, checksum: 'x' },
      { url: 'https://x/y', size: -1, checksum: 'x' },
      { url: 'https://x/y', size: 1.5, checksum: 'x' },
      { url: 'https://x/y', size: 1, checksum: '  ' },
      null,
    ];
    for (const item of bad) {
      const error = await ledger.record(item as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidLedgerItemError);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as InvalidLedgerItemError).code).toBe('PTS_INVALID_LEDGER_ITEM');
    }
    expect(await ledger.list()).toEqual([]);
  });

  it('filterNew of 100,000 items answers right in a bounded number of reads, never one per item at once', async () => {
    const connection = await mongoose.createConnection(db().uriWithDb, { monitorCommands: true }).asPromise();
    try {
      let commands = 0;
      let inFlight = 0;
      let maxInFlight = 0;
      connection.getClient().on('commandStarted', (e) => {
        if (e.commandName !== 'find' && e.commandName !== 'getMore') return;
        commands++;
        maxInFlight = Math.max(maxInFlight, ++inFlight);
      });
      const done = () => void inFlight--;
      connection.getClient().on('commandSucceeded', done);
      connection.getClient().on('commandFailed', done);
      const ledger = await Ledger.create({ connection, name: 'big' });
      const items = Array.from({ length: 100_000 }, (_, i) => file(`f${i}.tbz`, i, (i % 16).toString(16).repeat(32)));
      const recorded = new Set<number>();
      for (let i = 0; i < 300; i++) recorded.add((i * 337) % items.length);
      for (const i of recorded) await ledger.record(items[i]!);
      commands = 0;
      maxInFlight = 0;
      const fresh = await ledger.filterNew(items);
      expect(fresh).toEqual(items.filter((_, i) => !recorded.has(i)));
      expect(commands).toBeLessThan(500);
      expect(maxInFlight).toBeLessThanOrEqual(16);
      // A few items: one exact read each (FerretDB) or one $in (MongoDB), still bounded.
      commands = 0;
      expect(await ledger.filterNew(items.slice(0, 40))).toEqual(items.slice(0, 40).filter((_, i) => !recorded.has(i)));
      expect(commands).toBeLessThanOrEqual(40);
    } finally {
      await connection.close();
    }
  }, 300_000);
  it("releaseClaimsOf lets a holder's claims go at once, and only its own", async () => {
    const ledger = await open('release');
    const [x, y, z] = ['x', 'y', 'z'].map((n) => file(`itunes20261201/${n}.tbz`, 10, 'c4ca4238a0b923820dcc509a6f75849b'));
    const claim = (item: typeof x, holder: string) => ledger.claim(item!, { holder, leaseMs: 600_000 });
    expect((await claim(x, 'slot-a')).status).toBe('claimed');
    expect((await claim(y, 'slot-a')).status).toBe('claimed');
    expect((await claim(z, 'slot-c')).status).toBe('claimed');
    expect(await claim(x, 'slot-b')).toEqual({ status: 'busy', holder: 'slot-a' });
    expect(await ledger.releaseClaimsOf('slot-a')).toBe(2);
    expect(await ledger.releaseClaimsOf('slot-a')).toBe(0); // idempotent
    // Within the 10-minute lease, another holder takes what slot-a held; slot-c still holds its own.
    expect((await claim(x, 'slot-b')).status).toBe('claimed');
    expect((await claim(y, 'slot-b')).status).toBe('claimed');
    expect(await claim(z, 'slot-b')).toEqual({ status: 'busy', holder: 'slot-c' });
    expect(() => ledger.releaseClaimsOf('')).toThrow(ValidationError);
  });
});
