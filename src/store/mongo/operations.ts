import type { ClientSession } from 'mongoose';
import type { CausalSession } from './causal-session.js';
import { retryRead, retryWrite, saveOptions, type ResolvedStoreOptions, type StoreWriteConcern } from './store-options.js';
import { UpdateGate } from './update-gate.js';

/** Options of one try of a read: pass them on to the driver or mongoose. */
export interface ReadOptions {
  /** The causal session of this try (absent where the server has no use for one). */
  session?: ClientSession;
}

/** Options of one try of a write: pass them on to the driver or mongoose. */
export interface WriteOptions extends ReadOptions {
  writeConcern: StoreWriteConcern;
}

/**
 * How a store runs its operations, shared by the task, schedule and ledger
 * stores: each try under the operation deadline with transient errors
 * retried, in the store's causal session (see {@link CausalSession}), and
 * updates of one document under that document's update gate.
 */
export class StoreOperations {
  /** The store's causally consistent session; null where the server has no use for one (see {@link CausalSession}). */
  causal: CausalSession | null = null;
  /** Serialises writes of one document where the server's updates are not atomic (off elsewhere; see {@link UpdateGate}). */
  gate: UpdateGate;

  constructor(readonly o: ResolvedStoreOptions) {
    this.gate = new UpdateGate(null, o);
  }

  /**
   * Runs an idempotent write under the operation deadline, retrying transient
   * errors. `o` carries the write concern and the causal session: pass it on
   * as the operation's options.
   * @throws OperationTimeoutError when the last try got no reply in time
   */
  write<T>(operation: string, fn: (o: WriteOptions) => Promise<T>): Promise<T> {
    return retryWrite(this.o, operation, (o) => this.inSession((s) => fn({ ...o, ...s })));
  }

  /**
   * Like {@link write}, for an update of the one document that `gateKey`
   * names (`<collection>:<_id>`), under that document's update gate, so that
   * on servers whose updates are not atomic no two processes
   * read-modify-write it at once (see {@link UpdateGate}).
   */
  writeGated<T>(operation: string, gateKey: string, fn: (o: WriteOptions) => Promise<T>): Promise<T> {
    return this.gate.hold(gateKey, (check) =>
      this.write(operation, (o) => {
        check();
        return fn(o);
      }),
    );
  }

  /**
   * Runs a read under the operation deadline (`scale` times it), retrying
   * transient errors. `s` carries the causal session: pass it on as the
   * query's options.
   * @throws OperationTimeoutError when the last try got no reply in time
   */
  read<T>(operation: string, fn: (s: ReadOptions) => Promise<T>, scale = 1): Promise<T> {
    return retryRead(this.o, operation, () => this.inSession(fn), scale);
  }

  /** Runs one try of an operation in the store's causal session (see {@link CausalSession}); `s` is `{}` without one. */
  inSession<T>(fn: (s: ReadOptions) => Promise<T>): Promise<T> {
    return this.causal ? this.causal.run((session) => fn({ session })) : fn({});
  }

  /** Read concern, preference and server-side time limit of a query, and the causal session of the read running (see {@link read}). */
  q<Q extends { read(p: string): Q; readConcern(l: string): Q; maxTimeMS(ms: number): Q; session(s: ClientSession | null): Q }>(query: Q, scale = 1): Q {
    const q = query.read(this.o.readPreference).readConcern(this.o.readConcern).maxTimeMS(this.o.operationTimeoutMs * scale);
    const session = this.causal?.active;
    return session ? q.session(session) : q;
  }

  /** Save options carrying the store's write concern and causal session (for `Model.create`). */
  saveOptions(o: WriteOptions): Record<string, unknown> {
    return { ...saveOptions(o.writeConcern), ...(o.session ? { session: o.session } : {}) };
  }
}
