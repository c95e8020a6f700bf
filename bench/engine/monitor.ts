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
  /** Sum of `cursor.firstBatch` / `cursor.nextBatch` lengths in replies. */
  docs: number;
  failed: number;
}

export function emptyCounts(): Counts {
  return { commands: 0, byName: {}, docs: 0, failed: 0 };
}

export class CommandCounter {
  private readonly counts = emptyCounts();

  constructor(connection: Connection) {
    const client = connection.getClient();
    client.on('commandStarted', (e) => {
      this.counts.commands++;
      this.counts.byName[e.commandName] = (this.counts.byName[e.commandName] ?? 0) + 1;
    });
    client.on('commandSucceeded', (e) => {
      const cursor = (e.reply as { cursor?: { firstBatch?: unknown[]; nextBatch?: unknown[] } } | undefined)?.cursor;
      const batch = cursor?.firstBatch ?? cursor?.nextBatch;
      if (Array.isArray(batch)) this.counts.docs += batch.length;
    });
    client.on('commandFailed', () => {
      this.counts.failed++;
    });
  }

  /** A copy of the counts so far. */
  snapshot(): Counts {
    return { ...this.counts, byName: { ...this.counts.byName } };
  }

  /** What was counted since `since` (a snapshot). */
  since(since: Counts): Counts {
    const now = this.snapshot();
    const byName: Record<string, number> = {};
    for (const [k, v] of Object.entries(now.byName)) {
      const d = v - (since.byName[k] ?? 0);
      if (d !== 0) byName[k] = d;
    }
    return { commands: now.commands - since.commands, byName, docs: now.docs - since.docs, failed: now.failed - since.failed };
  }
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
