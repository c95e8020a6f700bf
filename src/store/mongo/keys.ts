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

/**
 * The filter value matching documents of incarnation `inc`: documents of
 * containers made before incarnations existed (`''`) carry none.
 */
export function ofIncarnation(inc: string): string | { $in: Array<null | string> } {
  return inc ? inc : { $in: [null, ''] };
}

/** True for MongoDB's duplicate-key error (E11000). */
export function isDuplicateKeyError(error: unknown): boolean {
  const e = error as { code?: number; writeErrors?: Array<{ code?: number }> } | null;
  return e?.code === 11000 || (e?.writeErrors?.length ?? 0) > 0 && e!.writeErrors!.every((w) => w.code === 11000);
}
