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
