import type { Connection } from 'mongoose';

/**
 * True when the server is FerretDB (its `buildInfo` carries `ferretdbVersion`);
 * false for MongoDB or when it cannot be told. FerretDB v1 serves only an
 * exact `_id` filter without reading the whole collection (docs/performance.md).
 */
export async function isFerretDb(connection: Connection): Promise<boolean> {
  try {
    const info = await connection.db!.admin().command({ buildInfo: 1 });
    return 'ferretdbVersion' in info;
  } catch {
    return false;
  }
}

/**
 * False on servers known to run an update as a read, then a write of the
 * whole document by `_id` in another transaction (FerretDB v1, see
 * update-gate.ts) or FerretDB of an unknown version; true for MongoDB, FerretDB v2
 * and servers that cannot be told.
 */
export async function updatesAreAtomic(connection: Connection): Promise<boolean> {
  try {
    const info = await connection.db!.admin().command({ buildInfo: 1 });
    if (!('ferretdbVersion' in info)) return true;
    // FerretDB built without version stamps reports "unknown": judged as v1, where the gate is only slower.
    return /^v?([2-9]|\d\d)\./.test(String(info.ferretdbVersion));
  } catch {
    return true;
  }
}
