import { lostRunner } from '../store/lease-health.js';
import type { TaskStore } from '../store/types.js';

/**
 * Whether some runner still works on `container`: a running task whose
 * holder is not judged lost. Judged on the database server's clock when the
 * store tells it (each renewal is stamped by the server, see
 * src/store/lease-health.ts), so a dead holder whose clock was ahead does not
 * keep its slot orphaned for as long as its clock was off. Only decides
 * whether to attach one more runner: two on one container are safe, leases
 * and fencing decide who runs what.
 */
export async function hasLiveRunner(tasks: TaskStore, container: string): Promise<boolean> {
  const serverNow = (await tasks.serverTime?.().catch(() => null)) ?? null;
  const snapshot = await tasks.loadSnapshot(container);
  const now = new Date();
  return (snapshot?.tasks ?? []).some((t) => t.state.status === 'running' && lostRunner(t.state, now, serverNow) === null);
}
