import type { StoreContext } from './context.js';
import type { TransitionDoc } from './models.js';

/** Most entries sent in one insert command. */
const MAX_BATCH = 500;

interface Pending {
  doc: TransitionDoc;
  resolve: (inserted: boolean) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit of log appends: the entries appended during one turn of the
 * event loop (the claims of a step, outcomes of attempts that ended
 * together) go to the server as one unordered `insert` command, so a server
 * that serialises writes (FerretDB over SQLite) commits them in one go and a
 * step costs one round trip, not one per task.
 *
 * Each entry keeps the semantics of a single append: inserted, or its
 * position taken (duplicate key). A duplicate is read back: the entry's own
 * nonce there means an earlier try of this very batch landed and its reply
 * was lost. A transient error repeats the whole batch (same `_id`s, same
 * nonces) under the store's deadline and retry budget.
 */
export class AppendBatcher {
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(private readonly ctx: StoreContext) {}

  /** Appends one entry; resolves true when it is in the log (ours), false when another writer holds its position. */
  append(doc: TransitionDoc): Promise<boolean> {
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
    let taken: Set<number>;
    try {
      taken = await this.ctx.write('append', (o) => insertAll(this.ctx, batch, o.writeConcern));
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    await Promise.all(
      batch.map(async (p, i) => {
        if (!taken.has(i)) return p.resolve(true);
        if (p.doc.nonce === undefined) return p.resolve(false);
        try {
          const there = await this.ctx.read('append', () =>
            this.ctx.q(this.ctx.m.transitions.findById(p.doc._id, { nonce: 1 }).lean<{ nonce?: string }>()).exec(),
          );
          p.resolve(there?.nonce === p.doc.nonce);
        } catch (error) {
          p.reject(error);
        }
      }),
    );
  }
}

/**
 * Inserts the batch unordered; returns the indexes whose `_id` was already
 * there. Any other per-document error is thrown (the batch is then retried or
 * failed as a whole; entries that landed are recognised by their nonce).
 */
async function insertAll(ctx: StoreContext, batch: readonly Pending[], writeConcern: object): Promise<Set<number>> {
  const taken = new Set<number>();
  try {
    await ctx.m.transitions.collection.insertMany(
      batch.map((p) => ({ ...p.doc }) as never),
      { ordered: false, writeConcern },
    );
  } catch (error) {
    const raw = (error as { writeErrors?: unknown }).writeErrors;
    const writeErrors = (Array.isArray(raw) ? raw : raw ? [raw] : []) as Array<{ index?: number; code?: number }>;
    if (writeErrors.length === 0 || writeErrors.some((w) => w.code !== 11000 || typeof w.index !== 'number')) throw error;
    for (const w of writeErrors) taken.add(w.index!);
  }
  return taken;
}
