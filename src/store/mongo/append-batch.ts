import { isTransientError, withDeadline } from '../retry.js';
import type { StoreContext } from './context.js';
import { DUPLICATE_KEY_CODES } from './keys.js';
import type { TransitionDoc } from './models.js';
import { TurnBatch } from './turn-batch.js';

/** Most entries sent in one insert command. */
const MAX_BATCH = 500;

/** What an append found: its own entry in the log, or another writer's at its position. */
export interface AppendVerdict {
  /** True when the position holds this very entry (inserted now, or by an earlier try whose reply was lost). */
  ours: boolean;
  /** When not ours: the nonce of the entry stored at the position (absent in entries of older versions). */
  storedNonce?: string;
  /**
   * When not ours: the entry stored at the position, as read back to judge
   * the append (without its `output`), so the caller learns the winner's
   * entry without reading it again.
   */
  stored?: TransitionDoc;
}

/**
 * The server refused an entry for what it holds (not a transient error, not
 * a taken position: the position was read back and holds nothing). `code`
 * and `serverMessage` are the server's (or the driver's) words.
 */
export class AppendRefusedError extends Error {
  constructor(
    readonly code: number | string | undefined,
    readonly serverMessage: string,
    options?: { cause?: unknown },
  ) {
    super(`The server refused a log entry (code ${String(code ?? 'none')}): ${serverMessage}`, options);
    this.name = 'AppendRefusedError';
  }
}

interface Pending {
  doc: TransitionDoc;
  resolve: (verdict: AppendVerdict) => void;
  reject: (error: unknown) => void;
  /** Stored only after the entry with this `_id` (see {@link AppendBatcher.append}). */
  after?: Predecessor;
}

/** The entry another one must follow, and when to stop waiting for it (see ClaimOrder in store/types.ts). */
export interface Predecessor {
  /** `_id` of the entry that must be stored first. */
  id: string;
  /** Settles once that entry's writer is over (its entry recorded, or given up on). */
  over: Promise<unknown>;
}

interface EntryError {
  code?: number | string;
  errmsg?: string;
}

/**
 * Group commit of log appends: the entries appended during one turn of the
 * event loop (the claims of a step, outcomes of attempts that ended
 * together) go to the server as one unordered `insert` command, so a server
 * that serialises writes (FerretDB over SQLite) commits them in one go and a
 * step costs one round trip, not one per task.
 *
 * Each entry keeps the truth of a single append (the write order and the
 * argument are in docs/correctness.md, "Group commit"):
 * - an entry the reply does not name in `writeErrors` landed, whatever
 *   happened to the others (the insert is unordered);
 * - an entry the reply names is judged by reading its position back: our
 *   nonce there is ours (an earlier try landed), another entry there is a
 *   taken position, nothing there is the server's verdict on this entry
 *   alone ({@link AppendRefusedError}), or, for a duplicate-key code, an
 *   entry not yet visible (tried again);
 * - a reply with a `writeConcernError`, or no reply at all (network, a
 *   connection the server closed, the deadline), proves nothing for any
 *   entry: each entry is then written again on its own, with its own retries,
 *   so one bad entry never holds the others back or fails them.
 *
 * An entry appended with a predecessor (a claim taking over the slot of an
 * attempt whose outcome is being written) is never stored before it: it goes
 * in the same insert right behind it, and that insert is then ordered (the
 * server stores its documents in order and stops at the first refused one,
 * so the claim is stored only if the outcome was); otherwise it waits until
 * the predecessor is stored, or its writer is over, and goes on as any entry.
 */
export class AppendBatcher {
  private readonly pending = new TurnBatch<Pending>((batch) => void this.flush(batch), MAX_BATCH);
  /** Entries waiting for a predecessor not appended yet, in flight, or refused, by the predecessor's `_id`. */
  private readonly parked = new Map<string, Pending[]>();

  constructor(private readonly ctx: StoreContext) {}

  /**
   * Appends one entry; resolves with what its position holds. With `after`,
   * the entry is never stored before that predecessor (see the class comment).
   * @throws AppendRefusedError, or a transient error once retries ran out
   */
  append(doc: TransitionDoc, after?: Predecessor): Promise<AppendVerdict> {
    return new Promise((resolve, reject) => {
      const p: Pending = { doc, resolve, reject, ...(after ? { after } : {}) };
      if (after && !this.pending.has((q) => q.doc._id === after.id)) this.park(p, after);
      else this.pending.add(p);
      // Entries that waited for this one go right behind it, in the same insert.
      const waiting = this.parked.get(doc._id);
      if (waiting) {
        this.parked.delete(doc._id);
        this.pending.add(...waiting);
      }
    });
  }

  /** Holds an entry until its predecessor is stored (or appended: then they go together) or its writer is over. */
  private park(p: Pending, after: Predecessor): void {
    const list = this.parked.get(after.id) ?? [];
    list.push(p);
    this.parked.set(after.id, list);
    const free = () => this.unpark(after.id, p);
    after.over.then(free, free);
  }

  /** Sends a parked entry on as any entry, without its predecessor (stored, or its writer over). */
  private unpark(id: string, p: Pending): void {
    const list = this.parked.get(id);
    const i = list ? list.indexOf(p) : -1;
    if (i < 0) return;
    list!.splice(i, 1);
    if (list!.length === 0) this.parked.delete(id);
    delete p.after;
    this.pending.add(p);
  }

  /** Settles an entry; once it is known stored, the entries waiting for it go on. */
  private resolve(p: Pending, verdict: AppendVerdict): void {
    p.resolve(verdict);
    if (!verdict.ours) return;
    for (const q of [...(this.parked.get(p.doc._id) ?? [])]) this.unpark(p.doc._id, q);
  }

  private settle(p: Pending, verdict: Promise<AppendVerdict>): Promise<void> {
    return verdict.then((v) => this.resolve(p, v), p.reject);
  }

  private async flush(all: Pending[]): Promise<void> {
    // A predecessor sent in an earlier insert: wait for its verdict.
    const ids = new Set(all.map((p) => p.doc._id));
    const batch: Pending[] = [];
    for (const p of all) {
      if (p.after && !ids.has(p.after.id)) this.park(p, p.after);
      else batch.push(p);
    }
    if (batch.length === 0) return;
    if (batch.some((p) => p.after)) return this.flushOrdered(batch);
    if (batch.length === 1) return this.settle(batch[0]!, this.alone(batch[0]!.doc));
    let refused: Map<number, EntryError>;
    try {
      refused = await withDeadline('append', this.ctx.o.operationTimeoutMs, this.insertBatch(batch.map((p) => p.doc)));
    } catch {
      // No verdict on any entry: each goes on alone (see the class comment).
      await Promise.all(batch.map((p) => this.settle(p, this.alone(p.doc))));
      return;
    }
    await Promise.all(batch.map((p, i) => this.judged(p, refused.get(i))));
  }

  /** Settles an entry of an insert that replied: stored unless the reply named it, else judged by a read-back. */
  private judged(p: Pending, error: EntryError | undefined): Promise<void> {
    if (!error) return Promise.resolve(this.resolve(p, { ours: true }));
    // Judged by a read-back; an entry still without a verdict goes on alone.
    return this.settle(
      p,
      this.judge(p.doc, error).catch((e: unknown) => {
        if (isTransientError(e)) return this.alone(p.doc);
        throw e;
      }),
    );
  }

  /**
   * A batch holding entries that must follow a predecessor in it: one
   * ordered insert, the predecessors and their followers first (in the order
   * appended, each predecessor before its followers), then the rest. The
   * server stops at the first entry it refuses: the ones before it are
   * stored, it is judged, the ones after it were not tried and are appended
   * again (a follower of the refused entry waits for it, see {@link park}).
   */
  private async flushOrdered(batch: Pending[]): Promise<void> {
    const awaited = new Set(batch.flatMap((p) => (p.after ? [p.after.id] : [])));
    const first = batch.filter((p) => p.after || awaited.has(p.doc._id));
    const sent = [...first, ...batch.filter((p) => !p.after && !awaited.has(p.doc._id))];
    let stop: { index: number; error: EntryError } | null;
    try {
      stop = await withDeadline('append', this.ctx.o.operationTimeoutMs, this.insertOrdered(sent.map((p) => p.doc)));
    } catch {
      // No verdict on any entry: each goes on alone, a follower once its predecessor is stored (or its writer over).
      await Promise.all(sent.map((p) => (p.after ? this.park(p, p.after) : this.settle(p, this.alone(p.doc)))));
      return;
    }
    const end = stop ? stop.index : sent.length;
    for (let i = 0; i < end; i++) this.resolve(sent[i]!, { ours: true });
    if (!stop) return;
    const stored = new Set(sent.slice(0, end).map((p) => p.doc._id));
    const untried = sent.slice(end + 1);
    for (const p of untried) if (p.after && stored.has(p.after.id)) delete p.after;
    // Back at the head of the next insert, in their order.
    this.pending.addFront(...untried);
    await this.judged(sent[end]!, stop.error);
  }

  /**
   * One ordered insert, one try: resolves with the first entry the server
   * refused (those before it are stored, those after it were not tried), or
   * null when all are stored; throws when the reply is no such verdict.
   */
  private async insertOrdered(docs: TransitionDoc[]): Promise<{ index: number; error: EntryError } | null> {
    try {
      await this.ctx.inSession((s) =>
        this.ctx.m.transitions.collection.insertMany(docs.map((d) => ({ ...d })) as never, { ordered: true, writeConcern: this.ctx.o.writeConcern, ...s }),
      );
      return null;
    } catch (error) {
      if (hasWriteConcernError(error)) throw error;
      const writeErrors = writeErrorsOf(error);
      const insertedCount = (error as { result?: { insertedCount?: unknown } }).result?.insertedCount;
      const [w] = writeErrors;
      const precise =
        writeErrors.length === 1 &&
        Number.isInteger(w!.index) &&
        w!.index! >= 0 &&
        w!.index! < docs.length &&
        (typeof insertedCount !== 'number' || insertedCount === w!.index);
      if (!precise) throw error;
      return { index: w!.index!, error: w! };
    }
  }

  /**
   * One unordered insert of the batch, one try. Resolves with the entries the
   * reply refused, by index; throws when the reply is no verdict per entry.
   */
  private async insertBatch(docs: TransitionDoc[]): Promise<Map<number, EntryError>> {
    try {
      await this.ctx.inSession((s) =>
        this.ctx.m.transitions.collection.insertMany(docs.map((d) => ({ ...d })) as never, { ordered: false, writeConcern: this.ctx.o.writeConcern, ...s }),
      );
      return new Map();
    } catch (error) {
      if (hasWriteConcernError(error)) throw error;
      const writeErrors = writeErrorsOf(error);
      const insertedCount = (error as { result?: { insertedCount?: unknown } }).result?.insertedCount;
      const indexes = new Set(writeErrors.map((w) => w.index));
      const precise =
        writeErrors.length > 0 &&
        writeErrors.every((w) => Number.isInteger(w.index) && w.index! >= 0 && w.index! < docs.length) &&
        indexes.size === writeErrors.length &&
        (typeof insertedCount !== 'number' || insertedCount === docs.length - writeErrors.length);
      if (!precise) throw error;
      return new Map(writeErrors.map((w) => [w.index!, w]));
    }
  }

  /**
   * Writes one entry on its own until it has a verdict, under the store's
   * deadline and retry budget (same `_id`, same nonce on every try).
   */
  private alone(doc: TransitionDoc): Promise<AppendVerdict> {
    return this.ctx.write('append', async (o) => {
      try {
        await this.ctx.m.transitions.collection.insertMany([{ ...doc }] as never, { ordered: false, ...o });
        return { ours: true };
      } catch (error) {
        if (hasWriteConcernError(error)) throw asTransient(error);
        if (isTransientError(error)) throw error;
        const [first] = writeErrorsOf(error);
        const e = error as { code?: number | string; message?: string };
        return this.judge(doc, first ?? { code: e.code, errmsg: String(e.message ?? error) }, error);
      }
    });
  }

  /**
   * The verdict on an entry the server named in its reply, from what its
   * position holds (a majority read, so what it finds is durable).
   * @throws a transient error when a duplicate key was reported but nothing is visible yet
   * @throws AppendRefusedError when the position is empty: the server refused the entry itself
   */
  private async judge(doc: TransitionDoc, error: EntryError, cause?: unknown): Promise<AppendVerdict> {
    // The whole entry but its output (the only field that may be large), so a
    // lost claim learns the winner's claim from this one read.
    const there = await this.ctx.read('append', () =>
      this.ctx.q(this.ctx.m.transitions.findById(doc._id, { output: 0 }).lean<TransitionDoc>()).exec(),
    );
    if (there) {
      if (doc.nonce !== undefined && there.nonce === doc.nonce) return { ours: true };
      return there.nonce === undefined ? { ours: false, stored: there } : { ours: false, storedNonce: there.nonce, stored: there };
    }
    if (DUPLICATE_KEY_CODES.has(Number(error.code))) {
      throw Object.assign(new Error(`a duplicate key was reported for ${doc._id}, but no entry is visible there yet`), { name: 'MongoWriteConcernError' });
    }
    throw new AppendRefusedError(error.code, String(error.errmsg ?? 'no message'), { cause: cause ?? error });
  }
}

function writeErrorsOf(error: unknown): Array<EntryError & { index?: number }> {
  const raw = (error as { writeErrors?: unknown }).writeErrors;
  return (Array.isArray(raw) ? raw : raw ? [raw] : []) as Array<EntryError & { index?: number }>;
}

/** True when a reply (or the error made of it) carries a write-concern error: nothing in it is known durable. */
export function hasWriteConcernError(error: unknown): boolean {
  const e = error as {
    name?: string;
    writeConcernError?: unknown;
    errorResponse?: { writeConcernError?: unknown };
    result?: { getWriteConcernError?: () => unknown };
  } | null;
  if (!e || typeof e !== 'object') return false;
  return Boolean(e.name === 'MongoWriteConcernError' || e.writeConcernError || e.errorResponse?.writeConcernError || e.result?.getWriteConcernError?.());
}

/** A write-concern error as a transient one (retried, never a verdict), keeping the original as `cause`. */
export function asTransient(error: unknown): Error {
  return Object.assign(new Error(`write concern not satisfied: ${(error as Error)?.message ?? String(error)}`, { cause: error }), {
    name: 'MongoWriteConcernError',
  });
}
