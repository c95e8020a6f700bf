import type { Connection } from 'mongoose';
import { NotFoundError } from '../errors.js';
import { defaultConnection } from '../store/mongo/models.js';
import { MongoStore } from '../store/mongo/mongo-store.js';
import type { TaskStore } from '../store/types.js';
import { summarizeContainer, type ContainerStatusReport } from './container-status.js';

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

/**
 * Reads a container's live state from any process; throws {@link NotFoundError} when it does not exist.
 *
 * Whether a running task's runner is lost is judged on the database
 * server's clock: the server's time is read just before the tasks, and each
 * holder's last renewal was stamped by the server, so the reader's and the
 * holders' wall clocks never meet (`runnerLost.judgedBy: 'server-clock'`).
 * The server's time is read first, so a slow read can only make a holder
 * look fresher, never silent. Stores or claims without server times fall back
 * to the written expiry against this machine's clock (`'wall-clock'`).
 */
export async function getContainerStatus(container: string, source: StoreSource = {}): Promise<ContainerStatusReport> {
  const store = await openStore({ readOnly: true, ...source });
  const serverReadAt = (await store.serverTime?.()) ?? null;
  const snapshot = await store.loadSnapshot(container);
  if (!snapshot) throw new NotFoundError('container', container);
  return summarizeContainer({ ...snapshot, serverReadAt });
}
