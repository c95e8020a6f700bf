import type { Connection } from 'mongoose';
import { assertSafeName } from '../definition/names.js';
import { MAX_TIMER_MS } from '../definition/options.js';
import { InvalidOptionError, NotFoundError } from '../errors.js';
import { deliver, type NodeCallback } from './callback.js';
import { CompatContainer } from './container.js';
import type { CompatContext } from './context.js';
import { lazyStore } from './lazy-store.js';

/** Options of {@link createClient}. */
export interface CompatClientOptions {
  /** Mongoose connection to use. @defaultValue mongoose's default connection, looked up on first use */
  connection?: Connection;
  /** Prefix of the collection names; the engine's runners must use the same. @defaultValue 'pts' */
  collectionPrefix?: string;
  /** How long a task handed out by `getNextTask` stays leased. @defaultValue 300000 (5 minutes) */
  leaseMs?: number;
  /**
   * How long the first call waits for the connection to reach a server before
   * failing with a ServerUnreachableError that names the host, in ms.
   * @defaultValue 5000
   */
  serverSelectionTimeoutMs?: number;
}

/** Default lease of a task handed out by `getNextTask`. */
const DEFAULT_LEASE_MS = 5 * 60_000;

/**
 * The 0.0.1 entry point: finds, creates and deletes task containers. Every
 * method takes an optional node-style callback; without one it returns a
 * promise of the callback's second argument. Nothing touches the database
 * until the first call, so it can be made before `mongoose.connect()`.
 */
export class CompatClient {
  readonly #ctx: CompatContext;

  /** @internal use {@link createClient} */
  constructor(options: CompatClientOptions = {}) {
    const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    if (typeof leaseMs !== 'number' || !Number.isFinite(leaseMs) || leaseMs <= 0) {
      throw new InvalidOptionError('leaseMs', `must be a positive number, got ${String(leaseMs)}`);
    }
    const timeoutMs = options.serverSelectionTimeoutMs ?? 5000;
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMER_MS) {
      throw new InvalidOptionError('serverSelectionTimeoutMs', `must be a positive number of ms up to ${MAX_TIMER_MS}, got ${String(timeoutMs)}`);
    }
    this.#ctx = {
      store: lazyStore(options.connection, options.collectionPrefix, timeoutMs),
      leaseMs,
      runnerId: `compat:${process.pid}`,
    };
  }

  /** The container with this name, or null. */
  getTaskContainer(name: string): Promise<CompatContainer | null>;
  getTaskContainer(name: string, callback: NodeCallback<CompatContainer | null>): void;
  getTaskContainer(name: string, callback?: NodeCallback<CompatContainer | null>): Promise<CompatContainer | null> | void {
    return deliver(async () => {
      assertSafeName('container', name);
      const snapshot = await (await this.#ctx.store()).loadSnapshot(name);
      return [snapshot ? new CompatContainer(this.#ctx, snapshot) : null] as const;
    }, callback);
  }

  /**
   * The container with this name, created when missing: `callback(err,
   * container, isNew)`. Racing calls, in any process, create it exactly once
   * (only one of them sees `isNew === true`). The promise form resolves to the
   * container only.
   */
  getOrCreateTaskContainer(name: string): Promise<CompatContainer>;
  getOrCreateTaskContainer(name: string, callback: NodeCallback<CompatContainer, [isNew: boolean]>): void;
  getOrCreateTaskContainer(
    name: string,
    callback?: NodeCallback<CompatContainer, [isNew: boolean]>,
  ): Promise<CompatContainer> | void {
    return deliver(async () => {
      assertSafeName('container', name);
      const store = await this.#ctx.store();
      // One read of the container with its tasks (as 0.0.1 loaded its
      // document, tasks embedded); only a missing one is created.
      const existing = await store.loadSnapshot(name);
      if (existing) return [new CompatContainer(this.#ctx, existing), false] as const;
      // 0.0.1 tasks are independent jobs: one failing must not stop the others.
      const { created } = await store.createContainer({ name, failFast: false, definition: null });
      const snapshot = await store.loadSnapshot(name);
      if (!snapshot) throw new NotFoundError('container', name, 'it was deleted while it was being created');
      return [new CompatContainer(this.#ctx, snapshot), created] as const;
    }, callback);
  }

  /** Deletes a container with its tasks and history; deleting a missing one is not an error. Returns the name. */
  deleteTaskContainer(name: string): Promise<string>;
  deleteTaskContainer(name: string, callback: NodeCallback<string>): void;
  deleteTaskContainer(name: string, callback?: NodeCallback<string>): Promise<string> | void {
    return deliver(async () => {
      assertSafeName('container', name);
      await (await this.#ctx.store()).deleteContainer(name);
      return [name] as const;
    }, callback);
  }
}

/** Makes a 0.0.1-style client bound to a connection (mongoose's default one unless given). */
export function createClient(options: CompatClientOptions = {}): CompatClient {
  return new CompatClient(options);
}
