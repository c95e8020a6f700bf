/**
 * Builds the end-of-run summary from the container's persisted tasks, so a
 * run that resumed after a crash still reports the rows imported before it.
 */
import type { TaskStore } from '../../index.js';
import type { DiscoverOutput, ImportOutput } from './steps.js';

/** The end-of-run summary. */
export interface EpfSummary {
  container: string;
  status: string;
  /** True when the slot found no new file. */
  nothingNew: boolean;
  files: { planned: number; ingested: number; failed: number; waiting: number };
  /** Bytes received from the feed by this process. */
  bytesDownloaded: number;
  /** Rows imported (of them repaired: surplus \x01 fields merged back) and rejected per table, from every run of this container. */
  tables: Record<string, { rows: number; repaired: number; rejected: number; replacedUtf8: number }>;
  /** Attempts beyond the first, over all tasks (retries and takeovers). */
  retries: number;
  durationMs: number;
}

/**
 * @param bytesDownloaded bytes received by this process
 * @param durationMs this process's running time
 */
export async function summarize(
  store: TaskStore,
  container: string,
  status: string,
  bytesDownloaded: number,
  durationMs: number,
): Promise<EpfSummary> {
  const snap = await store.loadSnapshot(container);
  const tasks = snap?.tasks ?? [];
  const discoverTask = tasks.find((t) => t.record.name === 'discover');
  const discover = discoverTask?.state.status === 'succeeded' ? (discoverTask.state.output as DiscoverOutput) : undefined;
  const planned = discover?.planned.length ?? 0;
  const publishes = tasks.filter((t) => t.record.name.startsWith('publish:'));
  const tables: EpfSummary['tables'] = {};
  for (const t of tasks) {
    if (!t.record.name.startsWith('import:') || t.state.status !== 'succeeded') continue;
    for (const r of (t.state.output as ImportOutput).tables) {
      const row = (tables[r.table] ??= { rows: 0, repaired: 0, rejected: 0, replacedUtf8: 0 });
      row.rows += r.rows;
      row.repaired += r.repaired ?? 0;
      row.rejected += r.rejected;
      row.replacedUtf8 += r.replacedUtf8;
    }
  }
  return {
    container,
    status,
    nothingNew: discover !== undefined && planned === 0,
    files: {
      planned,
      ingested: publishes.filter((t) => t.state.status === 'succeeded').length,
      failed: publishes.filter((t) => t.state.status !== 'succeeded').length + (discover?.failed?.length ?? 0),
      waiting: discover?.waiting.length ?? 0,
    },
    bytesDownloaded,
    tables,
    retries: tasks.reduce((n, t) => n + Math.max(0, t.state.attempt - 1), 0),
    durationMs,
  };
}
