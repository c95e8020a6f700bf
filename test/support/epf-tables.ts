/**
 * Reading EPF tables the way a reader should (through the pointer to the live
 * collection) and comparing them with the fixture generator's truth, field by field.
 */
import mongoose from 'mongoose';
import { expect } from 'vitest';
import { liveCollectionName } from '../../src/ingest/epf/load/switch.js';
import type { FixtureFeed } from '../../src/ingest/epf/fixture/server.js';
import type { TestDatabase } from './database.js';

/** A document with Decimal128, Long and Date turned into plain JSON values. */
export function plain(v: unknown): unknown {
  if (v instanceof mongoose.mongo.Decimal128) return v.toString();
  if (v instanceof mongoose.mongo.Long) return v.toNumber();
  if (v instanceof Date) return v.toISOString();
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

/** The live rows of `table` by `JSON.stringify(plain(_id))` (empty when the table was never published). */
export async function readTable(db: TestDatabase, table: string, prefix?: string): Promise<Map<string, Record<string, unknown>>> {
  const conn = db.connection;
  const name = await liveCollectionName(conn.db!, table, prefix);
  const docs = name ? await conn.db!.collection(name).find({}, { promoteLongs: false }).toArray() : [];
  return new Map(docs.map((d) => [JSON.stringify(plain(d._id)), plain(d) as Record<string, unknown>]));
}

/** Every table (or those named) holds exactly the generator's rows after the drops up to `upToDate` (default: all). */
export async function expectTablesAsGenerated(db: TestDatabase, feed: FixtureFeed, o: { upToDate?: string; tables?: string[] } = {}): Promise<void> {
  for (const t of feed.truth.tables) {
    if (o.tables && !o.tables.includes(t.table)) continue;
    const actual = await readTable(db, t.table);
    const expected = [...feed.truth.documents(t.table, o.upToDate)];
    expect(actual.size, `rows of ${t.table}`).toBe(expected.length);
    for (const e of expected) {
      const want = plain(e) as Record<string, unknown>;
      expect(actual.get(JSON.stringify(want._id)), `${t.table} ${JSON.stringify(want._id)}`).toEqual(want);
    }
  }
}
