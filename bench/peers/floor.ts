/**
 * Each store's floor: single writes per second at concurrency 16, for
 * `seconds` of wall time. FerretDB: `insertOne` of a small document through
 * the driver (its pool gives each loop its own connection). Redis: `SET` on
 * one ioredis connection shared by the loops (how ioredis is used; it
 * pipelines). PostgreSQL: a single-row `INSERT` in its own transaction on a
 * pool of 16 connections. The outside check of issue 13 measured the same way.
 */
import mongoose from 'mongoose';

/** Runs `write(i)` in `concurrency` loops until `seconds` have passed; writes per second. */
async function rate(concurrency: number, seconds: number, write: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) await write(next++);
    }),
  );
  return next / ((performance.now() - t0) / 1000);
}

/** FerretDB (or whatever `uri` points to): inserts/s into a fresh database, dropped after. */
export async function mongoFloor(uri: string, concurrency: number, seconds: number): Promise<number> {
  const url = new URL(uri);
  url.pathname = `/pts_bench_peers_floor_${Date.now()}`;
  const conn = await mongoose.createConnection(url.toString()).asPromise();
  try {
    const coll = conn.collection<{ _id: string; i: number }>('floor');
    return await rate(concurrency, seconds, (i) => coll.insertOne({ _id: `w-${i}`, i }));
  } finally {
    await conn.dropDatabase().catch(() => undefined);
    await conn.close();
  }
}

/** Redis SETs/s. */
export async function redisFloor(url: string, concurrency: number, seconds: number): Promise<number> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url);
  try {
    return await rate(concurrency, seconds, (i) => redis.set(`floor:${i}`, String(i)));
  } finally {
    await redis.flushdb();
    redis.disconnect();
  }
}

/** PostgreSQL INSERTs/s (autocommit), into a table dropped after. */
export async function postgresFloor(url: string, concurrency: number, seconds: number): Promise<number> {
  const pg = (await import('pg')).default;
  const pool = new pg.Pool({ connectionString: url, max: concurrency });
  try {
    await pool.query('create table if not exists bench_floor (id bigint primary key, v text)');
    return await rate(concurrency, seconds, (i) => pool.query('insert into bench_floor (id, v) values ($1, $2)', [i, `w-${i}`]));
  } finally {
    await pool.query('drop table if exists bench_floor').catch(() => undefined);
    await pool.end();
  }
}
