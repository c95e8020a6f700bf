/**
 * Deterministic `_id`s. Only `_id` lookups use an index on every server we
 * support (FerretDB scans for anything else), and a unique `_id` is what makes
 * task names and log positions exclusive. JSON arrays keep the parts unambiguous.
 */
export const taskKey = (container: string, task: string, incarnation = ''): string =>
  incarnation ? JSON.stringify([container, task, incarnation]) : JSON.stringify([container, task]);

/**
 * `_id` of the transition at position `token` of a task's log. The container's
 * incarnation (made when it was created) is part of every key, so writes of a
 * run whose container was deleted and created again never reach the new one.
 * An empty incarnation (containers created before it existed) keeps the old keys.
 */
export const transitionKey = (container: string, task: string, token: number, incarnation = ''): string =>
  incarnation ? JSON.stringify([container, task, token, incarnation]) : JSON.stringify([container, task, token]);

/** `_id` of page `seq` of a container incarnation's task directory (see `DirectoryDoc`). */
export const directoryKey = (container: string, incarnation: string, seq: number): string => JSON.stringify([container, incarnation, seq]);

/** `_id` of page `seq` of a container incarnation's declared graph (see `GraphPageDoc`). */
export const graphPageKey = (container: string, incarnation: string, seq: number): string => JSON.stringify([container, incarnation, 'graph', seq]);

/** `_id` of entry `seq` of the container listing (see `ListingDoc`). */
export const listingKey = (seq: number): string => JSON.stringify(['listing', seq]);

/** `_id` of block `block` of the container listing: a copy of its entries `block·32` … `block·32+31` (see `ListingReader`). */
export const listingBlockKey = (block: number): string => JSON.stringify(['block', block]);

/** `_id` of entry `seq` of the list of containers that reached `status` (see listing.ts). */
export const statusListKey = (status: string, seq: number): string => JSON.stringify(['status', status, seq]);

/** `_id` of block `block` of that list. */
export const statusListBlockKey = (status: string, block: number): string => JSON.stringify(['status-block', status, block]);

/**
 * The filter value matching documents of incarnation `inc`: documents of
 * containers made before incarnations existed (`''`) carry none.
 */
export function ofIncarnation(inc: string): string | { $in: Array<null | string> } {
  return inc ? inc : { $in: [null, ''] };
}

/**
 * Codes servers report for a duplicate key: MongoDB's 11000 (and the old
 * 11001), and 16908292 from FerretDB v2 in `insertMany`. A code is a hint,
 * never the verdict: callers read the position back.
 */
export const DUPLICATE_KEY_CODES: ReadonlySet<number> = new Set([11000, 11001, 16908292]);

/** True for a duplicate-key error (see {@link DUPLICATE_KEY_CODES}); callers confirm it by reading back. */
export function isDuplicateKeyError(error: unknown): boolean {
  const e = error as { code?: number; writeErrors?: Array<{ code?: number }> } | null;
  const dup = (code: unknown) => DUPLICATE_KEY_CODES.has(Number(code));
  return dup(e?.code) || ((e?.writeErrors?.length ?? 0) > 0 && e!.writeErrors!.every((w) => dup(w.code)));
}
