/**
 * Which processes are running an EPF container right now. Every process
 * that runs one (`pts epf`, one slot of `pts epf --hourly`) keeps a presence
 * document alive with a heartbeat, so a one-shot run can tell a healthy run
 * in progress (leave it alone) from one whose runner died (resume it). Task
 * leases alone cannot tell: a healthy run waiting out a retry delay holds no
 * lease.
 *
 * Liveness is judged on the database server's clock: renewals are stamped
 * with `$currentDate` and the reader asks the server for its time, so the
 * machines' clocks are never compared. A holder on the reader's own host
 * whose process no longer exists is dead at once.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Connection } from 'mongoose';
import { serverTime } from '../../store/mongo/server-clock.js';

/** Collection of presence documents: `<table prefix>runs`, e.g. `epf_runs`. */
export function presenceCollectionName(prefix: string): string {
  return `${prefix}runs`;
}

interface PresenceDoc {
  _id: string;
  container: string;
  runnerId: string;
  host: string;
  pid: number;
  leaseMs: number;
  startedAt: Date;
  renewedAt: Date;
}

/** A process running a container, as judged now. */
export interface RunPresence {
  container: string;
  runnerId: string;
  host: string;
  pid: number;
  /** Since its last heartbeat, on the server's clock (ms). */
  silentForMs: number;
  /** True while it renewed within its lease. */
  alive: boolean;
}

/** A heartbeat in progress; `stop()` removes the document (a graceful exit). */
export interface PresenceHeartbeat {
  stop(): Promise<void>;
}

/**
 * Announces this process as running `container` and renews every `leaseMs / 3`.
 * @param leaseMs how long a silent holder still counts as alive, ms
 */
export async function announcePresence(
  connection: Connection,
  o: { prefix: string; container: string; runnerId: string; leaseMs: number },
): Promise<PresenceHeartbeat> {
  const coll = connection.collection<PresenceDoc>(presenceCollectionName(o.prefix));
  const _id = `${o.container} ${o.runnerId}`;
  const renew = () =>
    coll.updateOne(
      { _id },
      {
        $set: { container: o.container, runnerId: o.runnerId, host: hostname(), pid: process.pid, leaseMs: o.leaseMs },
        $setOnInsert: { startedAt: new Date() },
        $currentDate: { renewedAt: true },
      },
      { upsert: true },
    );
  await renew();
  const timer = setInterval(() => void renew().catch(() => undefined), Math.max(100, Math.floor(o.leaseMs / 3)));
  timer.unref();
  let stopped: Promise<void> | undefined;
  return {
    stop: () =>
      (stopped ??= (async () => {
        clearInterval(timer);
        await coll.deleteOne({ _id }).catch(() => undefined);
      })()),
  };
}

/** The processes that announced themselves for `container`, judged on the server's clock (or this machine's when the server gives no time). */
export async function presenceOf(connection: Connection, prefix: string, container: string): Promise<RunPresence[]> {
  const docs = await connection.collection<PresenceDoc>(presenceCollectionName(prefix)).find({ container }).toArray();
  if (docs.length === 0) return [];
  const now = (await serverTime(connection.db)) ?? new Date();
  const here = hostname();
  return docs.map((d) => {
    const silentForMs = Math.max(0, now.getTime() - d.renewedAt.getTime());
    // On this machine a dead process is known at once (kill -9, then run again): no need to wait out its lease.
    const gone = d.host === here && !processExists(d.pid);
    return { container: d.container, runnerId: d.runnerId, host: d.host, pid: d.pid, silentForMs, alive: !gone && silentForMs < d.leaseMs };
  });
}

/** True while `pid` names a process that can still run: a zombie (killed, not yet reaped by its parent) counts as gone. */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/** Linux only (`/proc/<pid>/stat`, field 3 is the state; see proc(5)); elsewhere false. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** Removes presence documents of containers not in `keep` (pruning). Returns how many were removed. */
export async function prunePresence(connection: Connection, prefix: string, keep: (container: string) => boolean): Promise<number> {
  const coll = connection.collection<PresenceDoc>(presenceCollectionName(prefix));
  const stale = (await coll.find({}, { projection: { container: 1 } }).toArray()).filter((d) => !keep(d.container)).map((d) => d._id);
  if (stale.length === 0) return 0;
  let removed = 0;
  for (const _id of stale) removed += (await coll.deleteOne({ _id })).deletedCount;
  return removed;
}
