import type { Connection } from 'mongoose';
import { defaultConnection } from '../store/mongo/models.js';
import { MongoStore } from '../store/mongo/mongo-store.js';
import type { TaskStore } from '../store/types.js';

/**
 * Opens the store on first use, not when the client is made: 0.0.1 users
 * require the package before they call `mongoose.connect`. The connection is
 * looked up at that moment too (mongoose's default one when none was given),
 * and waited for at most `serverSelectionTimeoutMs`. A failed open is
 * forgotten, so the next call tries again.
 */
export function lazyStore(
  connection: Connection | undefined,
  collectionPrefix: string | undefined,
  serverSelectionTimeoutMs: number,
): () => Promise<TaskStore> {
  let pending: Promise<TaskStore> | null = null;
  return () =>
    (pending ??= MongoStore.create(connection ?? defaultConnection(), { collectionPrefix, serverSelectionTimeoutMs }).catch(
      (error: unknown) => {
        pending = null;
        throw error;
      },
    ));
}
