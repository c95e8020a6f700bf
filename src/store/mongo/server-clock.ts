import type { mongo } from 'mongoose';
import type { StoreContext } from './context.js';

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

/** The update that stamps a renewal of the lease held by a claim entry. */
export const STAMP_RENEWAL = { $currentDate: { leaseRenewedAt: true } } as const;

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
 * Stamps a new claim with the server's time (an insert cannot use
 * `$currentDate`). Best effort: the claim stands without it, and its first
 * heartbeat stamps it anyway; until then readers judge it by wall clocks.
 */
export async function stampClaim(ctx: StoreContext, id: string): Promise<void> {
  try {
    await ctx.write('stampClaim', (o) => ctx.m.transitions.updateOne({ _id: id, kind: 'claimed' }, STAMP_RENEWAL, o).exec());
  } catch {
    // See above: the claim is ours either way.
  }
}
