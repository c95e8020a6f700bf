import { isTransientError, withDeadline } from '../retry.js';
import type { StoreContext } from './context.js';
import { DUPLICATE_KEY_CODES } from './keys.js';
import type { TransitionDoc } from './models.js';

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
 */
export class AppendBatcher {
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(private readonly ctx: StoreContext) {}

  /** Appends one entry; resolves with what its position holds. @throws AppendRefusedError, or a transient error once retries ran out */
  append(doc: TransitionDoc): Promise<AppendVerdict> {
    return new Promise((resolve, reject) => {
      this.pending.push({ doc, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const batch = this.pending.splice(0, MAX_BATCH);
      if (this.pending.length > 0) this.schedule();
      void this.flush(batch);
    });
  }

  private async flush(batch: Pending[]): Promise<void> {
    if (batch.length === 1) return settle(batch[0]!, this.alone(batch[0]!.doc));
    let refused: Map<number, EntryError>;
    try {
      refused = await withDeadline('append', this.ctx.o.operationTimeoutMs, this.insertBatch(batch.map((p) => p.doc)));
    } catch {
      // No verdict on any entry: each goes on alone (see the class comment).
      await Promise.all(batch.map((p) => settle(p, this.alone(p.doc))));
      return;
    }
    await Promise.all(
      batch.map((p, i) => {
        const error = refused.get(i);
        if (!error) return p.resolve({ ours: true });
        // Judged by a read-back; an entry still without a verdict goes on alone.
        return settle(
          p,
          this.judge(p.doc, error).catch((e: unknown) => {
            if (isTransientError(e)) return this.alone(p.doc);
            throw e;
          }),
        );
      }),
    );
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

function settle(p: Pending, verdict: Promise<AppendVerdict>): Promise<void> {
  return verdict.then(p.resolve, p.reject);
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
