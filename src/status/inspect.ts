import type { Connection } from 'mongoose';
import type { LeaseObserver } from '../engine/lease-observer.js';
import { NotFoundError } from '../errors.js';
import { defaultConnection } from '../store/mongo/models.js';
import { MongoStore } from '../store/mongo/mongo-store.js';
import type { TaskStore } from '../store/types.js';
import { summarizeContainer, type ContainerStatusReport } from './container-status.js';
import { showUnfinishedCommands } from './unfinished-commands.js';

/** Where to read from: a store, or a connection (mongoose's default one when omitted). */
export interface StoreSource {
  store?: TaskStore;
  connection?: Connection;
  /** @defaultValue 'pts' */
  collectionPrefix?: string;
  /** Only read: do not create collections or indexes. @defaultValue false */
  readOnly?: boolean;
}

/** Opens the store of a connection (or returns the given one). */
export async function openStore(source: StoreSource = {}): Promise<TaskStore> {
  return (
    source.store ??
    MongoStore.create(source.connection ?? defaultConnection(), {
      collectionPrefix: source.collectionPrefix,
      ensureIndexes: !source.readOnly,
    })
  );
}

/** Options of {@link getContainerStatus}. */
export interface StatusReadOptions {
  /**
   * For a reader that reads the same container again and again (`pts status
   * --watch`): one observer for all its reads. Leases whose renewals the
   * server did not stamp (claims of older versions, or a server that does
   * not tell its time) are then judged by observation on this process's
   * monotonic clock, as runners judge takeover, instead of by wall clocks.
   */
  observer?: LeaseObserver;
}

/**
 * Reads a container's live state from any process; throws {@link NotFoundError} when it does not exist.
 *
 * Whether a running task's runner is lost is judged on the database
 * server's clock: the server's time is read just before the tasks, and each
 * holder's last renewal was stamped by the server, so the reader's and the
 * holders' wall clocks never meet (`runnerLost.judgedBy: 'server-clock'`).
 * The server's time is read first, so a slow read can only make a holder
 * look fresher, never silent. Stores or claims without server times fall back
 * to observation with `options.observer` (`'observation'`), else to the
 * written expiry against this machine's clock (`'wall-clock'`).
 */
export async function getContainerStatus(
  container: string,
  source: StoreSource = {},
  options: StatusReadOptions = {},
): Promise<ContainerStatusReport> {
  const store = await openStore({ readOnly: true, ...source });
  const readStartedAt = performance.now();
  const serverReadAt = (await store.serverTime?.()) ?? null;
  const snapshot = await store.loadSnapshot(container);
  if (!snapshot) throw new NotFoundError('container', container);
  const observed = options.observer?.judge(snapshot, readStartedAt, performance.now());
  // Commands recorded but cut off before their last write show as they will end.
  return summarizeContainer(showUnfinishedCommands({ ...snapshot, serverReadAt }, serverReadAt), observed);
}
