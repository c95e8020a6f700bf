import { Gauge, Registry } from 'prom-client';
import { summarizeContainer } from '../status/container-status.js';
import type { TaskStore } from '../store/types.js';
import { LabelSet } from './labels.js';

/** Most running containers read per scrape (the newest first). */
const MAX_CONTAINERS_READ = 200;
/** Newest containers examined per scrape for those (a bounded number of point reads; see `listContainerPage`). */
const MAX_CONTAINERS_EXAMINED = 1000;

/**
 * Gauges read from the database at each scrape, for processes that run no
 * runner (`pts dashboard`): running containers, and running tasks whose
 * runner is lost (judged on the server's clock), by container family. An
 * alert on `pts_tasks_runner_lost > 0 for 5m` finds containers stuck on a
 * dead runner. Reads the newest {@link MAX_CONTAINERS_READ} containers whose
 * status hint is `running` among the newest {@link MAX_CONTAINERS_EXAMINED}.
 */
export function databaseMetrics(store: TaskStore, registry = new Registry()): Registry {
  const families = new LabelSet();
  // One read per scrape, shared by the three gauges (prom-client calls `collect` before it reports a gauge).
  let reading: Promise<void> | null = null;
  const collect = async (): Promise<void> => {
    reading ??= read().finally(() => (reading = null));
    await reading;
  };
  const running = new Gauge({ name: 'pts_containers_running', help: 'Containers whose status is running (at most 200, among the newest 1000).', labelNames: ['container'], registers: [registry], collect });
  const lost = new Gauge({ name: 'pts_tasks_runner_lost', help: 'Running tasks whose runner stopped renewing its lease (server clock).', labelNames: ['container'], registers: [registry], collect });
  const tasks = new Gauge({ name: 'pts_tasks', help: 'Tasks of running containers, by status.', labelNames: ['container', 'status'], registers: [registry], collect });
  const read = async () => {
    running.reset();
    lost.reset();
    tasks.reset();
    const lostBy = new Map<string, number>();
    const page = await store.listContainerPage({ limit: MAX_CONTAINERS_READ, status: 'running', examine: MAX_CONTAINERS_EXAMINED });
    const serverReadAt = (await store.serverTime?.()) ?? null;
    for (const record of page.containers) {
      const snapshot = await store.loadSnapshot(record.name, { outputs: false });
      if (!snapshot) continue;
      const report = summarizeContainer({ ...snapshot, serverReadAt });
      if (report.status !== 'running') continue;
      const container = families.of(report.name);
      running.inc({ container });
      // set, not inc: a series shows from its first scrape, at 0 too (alerts need it).
      lost.set({ container }, (lostBy.get(container) ?? 0) + report.runnersLost);
      lostBy.set(container, (lostBy.get(container) ?? 0) + report.runnersLost);
      for (const [status, n] of Object.entries(report.counts)) tasks.inc({ container, status }, n);
    }
  };
  return registry;
}
