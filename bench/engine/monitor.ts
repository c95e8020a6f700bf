/**
 * Counts the commands a connection sends and the documents its cursors
 * return, through the driver's command monitoring (the connection must be
 * made with `monitorCommands: true`). The counts do not depend on the
 * server's speed: the same engine does the same round trips on any server.
 */
import type { Connection } from 'mongoose';

/** Commands started (total and by name) and documents returned by cursors. */
export interface Counts {
  commands: number;
  byName: Record<string, number>;
  /**
   * Commands by name and collection (`insert slots`), writes also by what
   * they did: `insert slots dup` (some document refused as a duplicate key),
   * `delete slots miss` (nothing deleted).
   */
  byTarget: Record<string, number>;
  /** Sum of `cursor.firstBatch` / `cursor.nextBatch` lengths in replies. */
  docs: number;
  failed: number;
}

export function emptyCounts(): Counts {
  return { commands: 0, byName: {}, byTarget: {}, docs: 0, failed: 0 };
}

export class CommandCounter {
  private readonly counts = emptyCounts();
  /** Targets of write commands in flight, by request id. */
  private readonly writes = new Map<number, string>();

  constructor(connection: Connection) {
    const client = connection.getClient();
    client.on('commandStarted', (e) => {
      this.counts.commands++;
      this.counts.byName[e.commandName] = (this.counts.byName[e.commandName] ?? 0) + 1;
      const collection = (e.command as Record<string, unknown>)[e.commandName];
      const target = typeof collection === 'string' ? `${e.commandName} ${collection}` : e.commandName;
      this.add(target);
      if (WRITES.has(e.commandName)) this.writes.set(e.requestId, target);
    });
    client.on('commandSucceeded', (e) => {
      const target = this.writes.get(e.requestId);
      if (target !== undefined) {
        this.writes.delete(e.requestId);
        const reply = e.reply as { n?: number; writeErrors?: Array<{ code?: number }> } | undefined;
        if (reply?.writeErrors?.some((w) => w.code === 11000)) this.add(`${target} dup`);
        if (e.commandName === 'delete' && reply?.n === 0) this.add(`${target} miss`);
      }
      const cursor = (e.reply as { cursor?: { firstBatch?: unknown[]; nextBatch?: unknown[] } } | undefined)?.cursor;
      const batch = cursor?.firstBatch ?? cursor?.nextBatch;
      if (Array.isArray(batch)) this.counts.docs += batch.length;
    });
    client.on('commandFailed', (e) => {
      this.writes.delete(e.requestId);
      this.counts.failed++;
    });
  }

  /** A copy of the counts so far. */
  snapshot(): Counts {
    return { ...this.counts, byName: { ...this.counts.byName }, byTarget: { ...this.counts.byTarget } };
  }

  private add(key: string): void {
    this.counts.byTarget[key] = (this.counts.byTarget[key] ?? 0) + 1;
  }

  /** What was counted since `since` (a snapshot). */
  since(since: Counts): Counts {
    const now = this.snapshot();
    return {
      commands: now.commands - since.commands,
      byName: diff(now.byName, since.byName),
      byTarget: diff(now.byTarget, since.byTarget),
      docs: now.docs - since.docs,
      failed: now.failed - since.failed,
    };
  }
}

const WRITES = new Set(['insert', 'update', 'delete']);

/** Non-zero differences of counts by key. */
function diff(now: Record<string, number>, since: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(now)) {
    const d = v - (since[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** Counts divided by a number of tasks (for per-task figures). */
export function perTask(c: Counts, tasks: number): { commands: number; docs: number; byName: Record<string, number> } {
  const n = Math.max(1, tasks);
  const byName: Record<string, number> = {};
  for (const [k, v] of Object.entries(c.byName)) byName[k] = round(v / n);
  return { commands: round(c.commands / n), docs: round(c.docs / n), byName };
}

export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
