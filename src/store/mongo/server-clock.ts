import type { mongo } from 'mongoose';

/**
 * The database server's clock, the one every machine of a deployment shares.
 *
 * Writers stamp each lease renewal with the server's time (`$currentDate`),
 * and readers ask the server for its time now (`hello`'s `localTime`), so a
 * reader judges how long a holder has been silent on that one clock, never
 * by comparing the holder's wall clock with its own. Measured on FerretDB
 * v1.24: `$currentDate` in updates and `hello.localTime` work; `$$NOW` is
 * returned as a literal string and pipeline updates are refused, so neither
 * is used. On a replica set both come from the primary (or, while there is
 * none, from a secondary, whose clock NTP keeps close to it).
 */

/**
 * The update that stamps a renewal of the lease held by a claim entry: the
 * server's time, and one more renewal counted by the server (the lease's
 * identity for readers, which no writer's clock takes part in).
 */
export const STAMP_RENEWAL = { $currentDate: { leaseRenewedAt: true }, $inc: { heartbeats: 1 } } as const;

/** The server's current time from `hello` (`isMaster` on servers without it); null when it gives none. */
export async function serverTime(db: mongo.Db | undefined): Promise<Date | null> {
  if (!db) return null;
  for (const command of [{ hello: 1 }, { isMaster: 1 }]) {
    try {
      const reply = await db.admin().command(command, { readPreference: 'primaryPreferred' });
      const at = reply.localTime as unknown;
      return at instanceof Date && !Number.isNaN(at.getTime()) ? at : null;
    } catch {
      // An old server without `hello`: try `isMaster`; otherwise no server time.
    }
  }
  return null;
}

/**
 * How far the server's clock is ahead of `clock` (ms; negative: behind),
 * measured once with `hello` (error: half the round trip); null when the
 * server gives no time. A claim is inserted, and an insert cannot use
 * `$currentDate`: its renewal stamp is the writer's time moved by this
 * offset, so it needs no extra write; every heartbeat then stamps the
 * server's own time.
 */
export async function measureServerOffset(db: mongo.Db | undefined, clock: { now(): number }): Promise<number | null> {
  const before = clock.now();
  const at = await serverTime(db);
  const after = clock.now();
  return at ? at.getTime() - (before + after) / 2 : null;
}
