/**
 * The peers this bench knows, loaded on demand so that a missing package
 * skips its peer (with the command that installs it) instead of failing.
 */
import type { Peer } from './peer.js';

export const PEER_IDS = ['bullmq', 'pg-boss', 'graphile-worker'] as const;
export type PeerId = (typeof PEER_IDS)[number];

const loaders: Record<PeerId, () => Promise<Peer>> = {
  bullmq: async () => (await import('./bullmq.js')).bullmq,
  'pg-boss': async () => (await import('./pgboss.js')).pgBoss,
  'graphile-worker': async () => (await import('./graphile.js')).graphileWorker,
};

/** The peer, or null (with the reason printed) when its packages are not installed. */
export async function loadPeer(id: PeerId): Promise<Peer | null> {
  try {
    return await loaders[id]();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code !== 'ERR_MODULE_NOT_FOUND' && err.code !== 'MODULE_NOT_FOUND') throw e;
    console.error(`${id}: its packages are not installed (${err.message.split('\n')[0]}); run \`npm --prefix bench/peers install\`: skipping ${id}`);
    return null;
  }
}
