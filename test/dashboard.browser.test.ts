/**
 * The dashboard in real headless Chromium (Debian's package, driven by
 * playwright-core) against the real test server: the list and its filters,
 * a container page that moves while a real runner runs it, the graph's
 * colours, task details, the retry and cancel buttons, schedules and runners.
 * Assertions wait on the DOM, never on time.
 */
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineContainer, MongoScheduleStore, MongoStore, Runner } from '../src/index.js';
import { serveDashboard, type DashboardServer } from '../src/observe/dashboard/serve.js';
import { artifactPath, launchChromium } from './support/browser.js';
import { databasePerFile } from './support/database.js';
import { sleep, snapshotOf, stateOf } from './support/engine.js';


const db = databasePerFile();
let browser: Browser;
let dashboard: DashboardServer;
let store: MongoStore;

async function runToEnd(name: string, fail: string[] = []): Promise<void> {
  const container = defineContainer(name, { failFast: false })
    .task('fetch', async () => 'f')
    .task('parse', { dependsOn: ['fetch'], retries: 0 }, async () => {
      if (fail.includes('parse')) throw new Error(`parse of ${name} broke`);
      return 'p';
    })
    .task('load', { dependsOn: ['parse'] }, async () => 'l');
  const runner = await Runner.create({ connection: db().connection, container, pollMs: 50 });
  await runner.run();
}

beforeAll(async () => {
  browser = await launchChromium();
  store = await MongoStore.create(db().connection);
  const schedules = await MongoScheduleStore.create(db().connection);
  await schedules.openHead('hourly-report', new Date('2026-12-06T09:00:00Z'), { cron: '0 * * * *', timezone: 'Europe/Berlin', overlap: 'skip', catchUp: 'latest' });
  await schedules.claimSlot({
    schedule: 'hourly-report',
    slot: new Date('2026-12-06T10:00:00Z'),
    container: 'report-10',
    state: 'skipped',
    reason: 'slot 09:00 is still running',
    claimedBy: 'scheduler-a',
  });
  dashboard = await serveDashboard({ store, schedules });
  // The list is newest first: the bulk containers go before the two that the first tests look for.
  for (let i = 0; i < 27; i++) await store.createContainer({ name: `bulk-${String(i).padStart(2, '0')}`, failFast: false, definition: [] });
  await runToEnd('nightly-ok');
  await runToEnd('nightly-broken', ['parse']);
}, 120_000);

afterAll(async () => {
  await dashboard?.close();
  await browser?.close();
});

async function open(path: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(new URL(path.replace(/^\//, ''), dashboard.url).href);
  return page;
}

describe('the container list', () => {
  it('lists the seeded containers with status and percentage', async () => {
    const page = await open('/');
    const ok = page.locator('tr[data-container="nightly-ok"]');
    await ok.waitFor();
    expect(await ok.getAttribute('data-status')).toBe('succeeded');
    expect(await ok.locator('.bar').getAttribute('data-percent')).toBe('100');
    expect(await page.locator('tr[data-container="nightly-broken"]').getAttribute('data-status')).toBe('failed');
    await page.close();
  });

  it('filters by status', async () => {
    const page = await open('/?status=failed');
    await page.locator('tr[data-container="nightly-broken"]').waitFor();
    const statuses = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-status')));
    expect(statuses).toEqual(['failed']);
    await page.close();
  });

  it('searches by name prefix through the form', async () => {
    const page = await open('/');
    await page.locator('tr[data-container]').first().waitFor();
    await page.fill('[data-testid=search]', 'nightly-');
    await page.click('form.filters button');
    await page.waitForURL(/q=nightly-/);
    await page.locator('tr[data-container="nightly-ok"]').waitFor();
    const names = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-container')));
    expect(names.sort()).toEqual(['nightly-broken', 'nightly-ok']);
    await page.close();
  });

  it('pages through more containers than fit one page, without repeating one', async () => {
    const page = await open('/?q=bulk-');
    await page.locator('tr[data-container]').first().waitFor();
    const first = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-container')));
    await page.click('[data-testid=next-page]');
    await page.waitForURL(/after=/);
    await page.locator('tr[data-container]').first().waitFor();
    const second = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-container')));
    expect(first).toHaveLength(25);
    expect(second).toHaveLength(2);
    expect(new Set([...first, ...second]).size).toBe(27);
    await page.close();
  });
});

describe('one container', () => {
  it('moves its graph and bars while a real runner runs it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const container = defineContainer('live-run', { failFast: false })
      .task('download', async (ctx) => {
        await ctx.checkpoint({ bytes: 1_000_000, totalBytes: 4_000_000 });
        await ctx.progress(0.25, '1 MB of 4 MB');
        await gate;
        return 'd';
      })
      .task('import', { dependsOn: ['download'] }, async () => 'i');
    const runner = await Runner.create({ connection: db().connection, container, pollMs: 50, checkpointIntervalMs: 0 });
    const run = runner.run();
    const page = await open('/containers/live-run');
    const node = page.locator('[data-testid=graph] g[data-task="download"]');
    await page.locator('g[data-task="download"][data-status="running"]').waitFor();
    expect(await node.getAttribute('class')).toContain('n-running');
    await page.locator('tr[data-task="download"] .bar[data-percent="25"]').waitFor();
    const row = page.locator('tr[data-task="download"]');
    expect(await row.locator('.status-text').textContent()).toBe('1 MB of 4 MB');
    expect(await row.locator('.units').textContent()).toContain('totalBytes: 4,000,000');
    expect(await row.locator('.lease code').textContent()).toBe(runner.runnerId);
    expect(await page.locator('[data-testid=graph] g[data-task="import"]').getAttribute('data-status')).toBe('pending');
    await page.screenshot({ path: artifactPath('dashboard-container-running.png'), fullPage: true });

    release();
    await run;
    await page.locator('[data-testid=summary][data-status="succeeded"]').waitFor();
    expect(await page.locator('g[data-task="import"]').getAttribute('data-status')).toBe('succeeded');
    expect(await page.locator('[data-testid=summary]').getAttribute('data-percent')).toBe('100');
    await page.close();
  });

  it('tells a root failure from the tasks skipped because of it, with the error, its stack and the history', async () => {
    const page = await open('/containers/nightly-broken');
    await page.locator('g[data-task="parse"]').waitFor();
    expect(await page.locator('g[data-task="parse"]').getAttribute('class')).toContain('n-failed-root');
    expect(await page.locator('g[data-task="load"]').getAttribute('class')).toContain('n-skipped');
    const parse = page.locator('tr[data-task="parse"]');
    expect(await parse.getAttribute('class')).toBe('root-failure');
    expect(await parse.locator('summary.error-line').textContent()).toBe('Error: parse of nightly-broken broke');
    expect(await parse.locator('pre').first().textContent()).toContain('dashboard.browser.test.ts');
    expect(await parse.locator('details ol li').first().textContent()).toContain('#1');
    expect(await page.locator('tr[data-task="load"] .muted').first().textContent()).toContain('parse');
    await page.screenshot({ path: artifactPath('dashboard-container-failed.png'), fullPage: true });
    await page.close();
  });

  it('filters its tasks by data: the input, the error and the status, and dims the others in the graph', async () => {
    const container = defineContainer('fetch-feeds', { failFast: false })
      .task('feed-a', { input: { url: 'https://feeds.example/alpha.xml' } }, async () => 'a')
      .task('feed-b', { input: { url: 'https://feeds.example/beta.xml' }, retries: 0 }, async () => {
        throw new Error('beta answered 503');
      })
      .task('feed-c', { input: { url: 'https://mirror.example/alpha.xml' } }, async () => 'c');
    await (await Runner.create({ connection: db().connection, container, pollMs: 50 })).run().catch(() => undefined);
    const page = await open('/containers/fetch-feeds');
    await page.locator('tr[data-task="feed-c"]').waitFor();
    const shown = () => page.locator('tr[data-task]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task')));
    expect(await page.locator('tr[data-task="feed-a"] details summary', { hasText: 'input' }).count()).toBe(1);

    await page.locator('[data-testid="task-filter"]').fill('alpha');
    await page.locator('[data-testid="task-filter-note"]').waitFor();
    expect(await shown()).toEqual(['feed-a', 'feed-c']);
    expect(await page.locator('g[data-task="feed-b"]').getAttribute('class')).toContain('dim');
    expect(await page.locator('g[data-task="feed-a"]').getAttribute('class')).not.toContain('dim');

    await page.locator('[data-testid="task-filter"]').fill('503');
    await expect.poll(shown, { timeout: 30_000 }).toEqual(['feed-b']);

    await page.locator('[data-testid="task-filter"]').fill('mirror alpha');
    await expect.poll(shown, { timeout: 30_000 }).toEqual(['feed-c']);

    await page.locator('[data-testid="task-filter"]').fill('');
    await expect.poll(shown, { timeout: 30_000 }).toEqual(['feed-a', 'feed-b', 'feed-c']);
    expect(await page.locator('[data-testid="task-filter-note"]').count()).toBe(0);
    await page.close();
  });

  it('retries a failed container from its button, and the database changes', async () => {
    await runToEnd('to-retry', ['parse']);
    const page = await open('/containers/to-retry');
    await page.locator('button[data-action=retry]').click();
    await page.locator('tr[data-task="parse"][data-status="pending"]').waitFor();
    const snapshot = await snapshotOf(db().connection, 'to-retry');
    expect(stateOf(snapshot, 'parse').status).toBe('pending');
    expect(stateOf(snapshot, 'load').status).toBe('pending');
    expect(snapshot.container.status).toBe('running');
    await page.close();
  });

  it('retries one task from its row', async () => {
    await runToEnd('task-retry', ['parse']);
    const page = await open('/containers/task-retry');
    await page.locator('tr[data-task="parse"] button[data-action=retry-task]').click();
    await page.locator('tr[data-task="parse"][data-status="pending"]').waitFor();
    expect(stateOf(await snapshotOf(db().connection, 'task-retry'), 'parse').status).toBe('pending');
    await page.close();
  });

  it('cancels a running container from its button', async () => {
    await store.createContainer({ name: 'to-cancel', failFast: false, definition: [{ name: 'a', dependsOn: [] }] });
    await store.addTasks('to-cancel', [
      { name: 'a', dependsOn: [], handler: 'a', input: null, options: (await import('../src/index.js')).DEFAULT_TASK_OPTIONS, dynamic: false, addedBy: null },
    ]);
    const page = await open('/containers/to-cancel');
    page.once('dialog', (d) => void d.accept());
    await page.locator('button[data-action=cancel]').click();
    await page.locator('[data-testid=summary][data-status="cancelled"]').waitFor();
    expect((await snapshotOf(db().connection, 'to-cancel')).container.status).toBe('cancelled');
    await page.close();
  });
});

describe('schedules and runners', () => {
  it('shows each schedule with its cron, time zone, next firing, slots, their states and reasons', async () => {
    const page = await open('/schedules');
    const info = page.locator('section[data-schedule="hourly-report"] [data-testid=schedule-info]');
    await info.waitFor();
    expect(await info.textContent()).toMatch(/^cron 0 \* \* \* \* \(Europe\/Berlin\) · next firing /);
    const row = page.locator('section[data-schedule="hourly-report"] tr[data-state="skipped"]');
    await row.waitFor();
    expect(await row.textContent()).toContain('slot 09:00 is still running');
    expect(await row.locator('a').getAttribute('href')).toContain('/containers/report-10');
    await page.close();
  });

  it('shows the runner holding a task, with its heartbeat', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const container = defineContainer('held', { failFast: false }).task('slow', async () => gate);
    const runner = await Runner.create({ connection: db().connection, container, pollMs: 50 });
    const run = runner.run();
    const page = await open('/runners');
    const row = page.locator(`tr[data-runner="${runner.runnerId}"]`);
    await row.waitFor({ timeout: 30_000 });
    expect(await row.textContent()).toContain('held / slow #1');
    release();
    await run;
    await page.close();
  });
});

it('closes the live stream when the page goes', async () => {
  const page = await open('/containers/nightly-ok');
  await page.locator('g[data-task="fetch"]').waitFor();
  await sleep(200);
  await page.close();
  const deadline = Date.now() + 20_000;
  while ((dashboard.server as unknown as { _connections: number })._connections > 0 && Date.now() < deadline) await sleep(100);
  const count = await new Promise<number>((resolve) => dashboard.server.getConnections((_e, n) => resolve(n)));
  expect(count).toBe(0);
});

it('saved its screenshots as test artifacts', () => {
  expect(existsSync(artifactPath('dashboard-container-running.png'))).toBe(true);
});
