import { withDeadline } from '../retry.js';
import { hasWriteConcernError } from './append-batch.js';
import type { StoreContext } from './context.js';
import type { SlotDoc } from './models.js';
import { TurnBatch } from './turn-batch.js';

/** Most slot documents (or keys) sent in one command. */
const MAX_BATCH = 500;

/** Duplicate key: the server's code for a slot already taken. */
const DUPLICATE_KEY = 11000;

interface PendingInsert {
  docs: SlotDoc[];
  resolve: (refused: number[]) => void;
  reject: (error: unknown) => void;
}

interface PendingDelete {
  keys: string[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit of slot writes: the acquisitions made during one turn of the
 * event loop (the claims of a step) go to the server as one unordered
 * `insert`, and the releases made during one turn (attempts whose outcomes
 * were recorded together) as one `delete` by exact `_id`s. A step that
 * claims 8 tasks under a limit then costs one slot insert, not 8, and its
 * claims stay grouped too (they follow the insert's one reply).
 *
 * Each acquisition keeps the truth of a single insert: the insert is
 * unordered, so the documents the reply does not name landed, and each named
 * one is a duplicate key (taken) or an error of its own. An acquisition with
 * a document refused for anything but a duplicate key, and every acquisition
 * of a batch whose reply is no verdict per document (network, deadline,
 * write concern), is sent again on its own with the store's retries: a
 * document of it that landed meanwhile shows up as a duplicate holding its
 * own nonce, which `acquireSlots` counts as its own. A delete by `_id` names
 * one acquisition per key, so a batch deletes exactly what each release
 * meant; a failed batch is sent again release by release.
 */
export class SlotBatcher {
  private readonly inserts = new TurnBatch<PendingInsert>((batch) => void this.flushInserts(batch), MAX_BATCH, (p) => p.docs.length);
  private readonly deletes = new TurnBatch<PendingDelete>((batch) => void this.flushDeletes(batch), MAX_BATCH, (p) => p.keys.length);

  constructor(private readonly ctx: StoreContext) {}

  /** Inserts the documents of one acquisition; resolves with the indexes (into `docs`) refused as taken. */
  insert(docs: SlotDoc[]): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.inserts.add({ docs, resolve, reject });
    });
  }

  /** Deletes slot documents by exact `_id`. */
  delete(keys: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.deletes.add({ keys, resolve, reject });
    });
  }

  private async flushInserts(batch: PendingInsert[]): Promise<void> {
    if (batch.length === 1) return settle(batch[0]!, this.insertAlone(batch[0]!.docs));
    const all = batch.flatMap((p) => p.docs);
    let refused: Map<number, number | undefined>;
    try {
      refused = await withDeadline('acquireSlots', this.ctx.o.operationTimeoutMs, this.insertOnce(all));
    } catch {
      // No verdict per document: each acquisition goes on alone.
      await Promise.all(batch.map((p) => settle(p, this.insertAlone(p.docs))));
      return;
    }
    let offset = 0;
    await Promise.all(
      batch.map((p) => {
        const mine: number[] = [];
        let other = false;
        for (let i = 0; i < p.docs.length; i++) {
          if (!refused.has(offset + i)) continue;
          if (refused.get(offset + i) === DUPLICATE_KEY) mine.push(i);
          else other = true;
        }
        offset += p.docs.length;
        return other ? settle(p, this.insertAlone(p.docs)) : p.resolve(mine);
      }),
    );
  }

  /**
   * One unordered insert, one try: the refused documents (index → code).
   * @throws when the reply is no verdict per document
   */
  private async insertOnce(docs: SlotDoc[]): Promise<Map<number, number | undefined>> {
    try {
      await this.ctx.inSession((s) =>
        this.ctx.m.slots.collection.insertMany(docs.map((d) => ({ ...d })) as never, { ordered: false, writeConcern: this.ctx.o.writeConcern, ...s }),
      );
      return new Map();
    } catch (error) {
      if (hasWriteConcernError(error)) throw error;
      const writeErrors = writeErrorsOf(error);
      const indexes = new Set(writeErrors.map((w) => w.index));
      const precise =
        writeErrors.length > 0 &&
        indexes.size === writeErrors.length &&
        writeErrors.every((w) => Number.isInteger(w.index) && w.index! >= 0 && w.index! < docs.length);
      if (!precise) throw error;
      return new Map(writeErrors.map((w) => [w.index!, w.code]));
    }
  }

  /** One acquisition's insert on its own, with the store's retries: the indexes refused as taken. */
  private insertAlone(docs: SlotDoc[]): Promise<number[]> {
    return this.ctx.write('acquireSlots', async (o) => {
      try {
        await this.ctx.m.slots.collection.insertMany(docs.map((d) => ({ ...d }) as never), { ordered: false, ...o });
        return [];
      } catch (error) {
        const writeErrors = writeErrorsOf(error);
        if (writeErrors.length === 0 || writeErrors.some((w) => w.code !== DUPLICATE_KEY || typeof w.index !== 'number')) throw error;
        return writeErrors.map((w) => w.index!);
      }
    });
  }

  private async flushDeletes(batch: PendingDelete[]): Promise<void> {
    const keys = batch.flatMap((p) => p.keys);
    try {
      await withDeadline(
        'releaseSlots',
        this.ctx.o.operationTimeoutMs,
        this.ctx.inSession((s) => this.ctx.m.slots.deleteMany({ _id: { $in: keys } }, { writeConcern: this.ctx.o.writeConcern, ...s }).exec()),
      );
      for (const p of batch) p.resolve();
    } catch {
      // Deletes by `_id` are idempotent: each release goes on alone, with retries.
      await Promise.all(
        batch.map((p) =>
          this.ctx
            .write('releaseSlots', (o) => this.ctx.m.slots.deleteMany({ _id: { $in: p.keys } }, o).exec())
            .then(() => p.resolve(), p.reject),
        ),
      );
    }
  }
}

function settle(p: PendingInsert, verdict: Promise<number[]>): Promise<void> {
  return verdict.then(p.resolve, p.reject);
}

function writeErrorsOf(error: unknown): Array<{ index?: number; code?: number }> {
  const raw = (error as { writeErrors?: unknown }).writeErrors;
  return (Array.isArray(raw) ? raw : raw ? [raw] : []) as Array<{ index?: number; code?: number }>;
}
