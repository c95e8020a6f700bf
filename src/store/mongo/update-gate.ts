import { randomBytes } from 'node:crypto';
import type { Model } from 'mongoose';
import { TaskStatusError } from '../../errors.js';
import { isDuplicateKeyError } from './keys.js';
import type { GateDoc } from './models.js';
import { retryRead, retryWrite, type ResolvedStoreOptions } from './store-options.js';

/** A gate whose holder took too long: its update may meet the next holder's, so it is tried again under a new gate. */
class GateLapsedError extends TaskStatusError {
  constructor(key: string) {
    super('PTS_GATE_LAPSED', `The update gate of ${key} was held past its lease`);
  }
}

/** Checks, before each try of a gated update, that the gate is still held (throws when its lease is over). */
export type GateCheck = () => void;

/**
 * Serialises updates of one document, on servers that run an update as a
 * read and then a write of the whole document by `_id` in another
 * transaction. FerretDB v1 does (v1.24 internal/handler/msg_update.go:
 * `Query`, then `UpdateAll` replaces by `_id`): two processes updating one
 * container document at once overwrote each other's fields, and 3 × 40
 * concurrent `$inc`s left 48 (test/store.container-doc-writers.test.ts).
 * MongoDB updates one document atomically; there the gate is off and costs
 * nothing.
 *
 * Taking the gate is one insert (a duplicate key means it is held), giving
 * it back one delete by exact `_id`. A holder that died leaves its gate: a
 * waiter that sees the same acquisition for `leaseMs` of its own monotonic
 * clock deletes it (by that `_id`) and takes over, so a crash while holding
 * a gate delays the next write of that document by up to a lease. A holder
 * checks before each try of its update that it is still within its lease
 * minus one operation deadline (a try gets no longer), so its update is sent
 * while no one else can hold the gate; only a process paused between that
 * check and the server's reply could still interleave.
 */
export class UpdateGate {
  /**
   * How long a gate may stay with one holder before a waiter takes it over
   * (ms): one operation deadline plus 5 s. A holder sends tries of its update
   * only in the first 5 s, then takes the gate again; it is written in the
   * gate document, and a waiter honours the holder's.
   */
  readonly leaseMs: number;
  /** Updates of this process, chained per key, so that it never waits on itself. */
  private readonly local = new Map<string, Promise<unknown>>();

  constructor(
    private readonly model: Model<GateDoc> | null,
    private readonly o: ResolvedStoreOptions,
  ) {
    this.leaseMs = o.operationTimeoutMs + 5_000;
  }

  /** False where the server updates a document atomically (the gate is skipped). */
  get enabled(): boolean {
    return this.model !== null;
  }

  /**
   * Runs `fn` while this process holds the gate of `key`; `check` throws once
   * the gate's lease is too far gone for another try to be sent.
   * @throws OperationTimeoutError when the gate could not be taken or given back under the deadlines
   */
  async hold<T>(key: string, fn: (check: GateCheck) => Promise<T>): Promise<T> {
    const model = this.model;
    if (!model) return fn(() => undefined);
    const previous = this.local.get(key) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(() => this.holdAcross(model, key, fn));
    this.local.set(key, mine);
    try {
      return await mine;
    } finally {
      if (this.local.get(key) === mine) this.local.delete(key);
    }
  }

  private async holdAcross<T>(model: Model<GateDoc>, key: string, fn: (check: GateCheck) => Promise<T>): Promise<T> {
    for (;;) {
      const id = await this.acquire(model, key);
      const since = performance.now();
      const usableMs = this.leaseMs - this.o.operationTimeoutMs;
      try {
        return await fn(() => {
          if (performance.now() - since > usableMs) throw new GateLapsedError(key);
        });
      } catch (error) {
        if (!(error instanceof GateLapsedError)) throw error;
      } finally {
        await retryWrite(this.o, 'releaseGate', () => model.deleteOne({ _id: id }).exec()).catch(() => undefined);
      }
    }
  }

  private async acquire(model: Model<GateDoc>, key: string): Promise<string> {
    const id = `${key}\u0000${randomBytes(8).toString('hex')}`;
    let seen = null as { id: string; since: number } | null;
    let waitMs = 2;
    let unexplained = 0;
    for (;;) {
      try {
        await retryWrite(this.o, 'takeGate', () => model.create([{ _id: id, key, at: new Date(), leaseMs: this.leaseMs }]));
        return id;
      } catch (error) {
        // Held by another acquisition, or our own insert whose reply was lost: read what stands.
        const holder = await retryRead(this.o, 'readGate', () => model.findOne({ key }).lean<GateDoc>().exec());
        if (holder?._id === id) return id;
        if (!holder) {
          // Given back meanwhile: try again, unless the insert keeps failing with no gate in the way.
          if (!isDuplicateKeyError(error) && ++unexplained >= 5) throw error;
          continue;
        }
        unexplained = 0;
        const now = performance.now();
        if (seen?.id !== holder._id) seen = { id: holder._id, since: now };
        else if (now - seen.since > (holder.leaseMs ?? this.leaseMs)) {
          // The same acquisition for a whole lease: its holder is gone.
          await retryWrite(this.o, 'evictGate', () => model.deleteOne({ _id: holder._id }).exec());
          seen = null;
          continue;
        }
        await new Promise((r) => setTimeout(r, waitMs));
        waitMs = Math.min(waitMs * 2, 100);
      }
    }
  }
}
