/** Small helpers shared by the engine tests. */
import { MongoStore, type ContainerSnapshot } from '../../src/index.js';
import type { Connection } from 'mongoose';

/** Reads a container's snapshot straight from the store. */
export async function snapshotOf(connection: Connection, container: string): Promise<ContainerSnapshot> {
  const store = await MongoStore.create(connection);
  const snapshot = await store.loadSnapshot(container);
  if (!snapshot) throw new Error(`no container ${container}`);
  return snapshot;
}

/** The state of one task in a snapshot. */
export function stateOf(snapshot: ContainerSnapshot, task: string) {
  const t = snapshot.tasks.find((x) => x.record.name === task);
  if (!t) throw new Error(`no task ${task}`);
  return t.state;
}

/** Resolves after `ms` milliseconds, or rejects with the signal's reason. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
