/**
 * The dashboard's guards, in real headless Chromium and over plain HTTP,
 * against the real test server: 401 without credentials when auth is set,
 * 403 for forged actions (no CSRF token, a wrong one, a cross-site form),
 * read-only mode, 404 and 400 pages without stack traces, and an outage
 * banner that appears while the database is unreachable (a TCP proxy cut)
 * and goes by itself when it comes back.
 */
import mongoose from 'mongoose';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineContainer, MongoStore, Runner } from '../src/index.js';
import { basicAuth } from '../src/observe/dashboard/index.js';
import { serveDashboard, type DashboardServer } from '../src/observe/dashboard/serve.js';
import { startTcpProxy } from '../tools/tcp-proxy.js';
import { artifactPath, launchChromium } from './support/browser.js';
import { databasePerFile, uriWithDb } from './support/database.js';
import { snapshotOf, stateOf } from './support/engine.js';


const db = databasePerFile();
let browser: Browser;
let open: DashboardServer;
let readOnly: DashboardServer;
let guarded: DashboardServer;

beforeAll(async () => {
  browser = await launchChromium();
  const store = await MongoStore.create(db().connection);
  const container = defineContainer('broken', { failFast: false }).task('only', { retries: 0 }, async () => {
    throw new Error('no disk');
  });
  await (await Runner.create({ connection: db().connection, container, pollMs: 50 })).run();
  open = await serveDashboard({ store });
  readOnly = await serveDashboard({ store, readOnly: true });
  guarded = await serveDashboard({ store, auth: basicAuth('ops', 's3cret') });
}, 120_000);

afterAll(async () => {
  await Promise.all([open, readOnly, guarded].map((d) => d?.close()));
  await browser?.close();
});

const url = (d: DashboardServer, path: string) => new URL(path.replace(/^\//, ''), d.url).href;

/** The page's CSRF cookie and token, as a browser that loaded it holds them. */
async function session(d: DashboardServer): Promise<{ cookie: string; token: string }> {
  const res = await fetch(url(d, '/containers/broken'));
  const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  const token = /name="pts-csrf" content="([^"]+)"/.exec(await res.text())![1]!;
  return { cookie, token };
}

describe('authentication', () => {
  it('answers 401 with a Basic challenge to every request without credentials, assets and API included', async () => {
    for (const path of ['/', '/containers/broken', '/api/containers', '/assets/app.js']) {
      const res = await fetch(url(guarded, path));
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
    }
    // The browser's own request API (Chromium turns a navigation answered 401 into an error page).
    const page = await browser.newPage();
    const res = await page.request.get(url(guarded, '/'));
    expect(res.status()).toBe(401);
    await page.close();
  });

  it('lets the right credentials in, in the browser too, and refuses wrong ones', async () => {
    const ok = await fetch(url(guarded, '/api/containers'), { headers: { authorization: `Basic ${Buffer.from('ops:s3cret').toString('base64')}` } });
    expect(ok.status).toBe(200);
    const wrong = await fetch(url(guarded, '/api/containers'), { headers: { authorization: `Basic ${Buffer.from('ops:guess').toString('base64')}` } });
    expect(wrong.status).toBe(401);
    const context = await browser.newContext({ httpCredentials: { username: 'ops', password: 's3cret' } });
    const page = await context.newPage();
    await page.goto(url(guarded, '/'));
    await page.locator('tr[data-container="broken"]').waitFor();
    await context.close();
  });

  it('refuses to listen beyond localhost without auth', async () => {
    await expect(serveDashboard({ store: await MongoStore.create(db().connection), host: '0.0.0.0' })).rejects.toThrow(/without authentication/);
  });
});

describe('actions', () => {
  it('answers 403 to a forged action and changes nothing: no token, a wrong token, a token without its cookie', async () => {
    const { cookie, token } = await session(open);
    const retry = url(open, '/api/containers/broken/retry');
    const attempts: RequestInit[] = [
      { method: 'POST', headers: { cookie } },
      { method: 'POST', headers: { cookie, 'x-csrf-token': `${token}x` } },
      { method: 'POST', headers: { 'x-csrf-token': token } },
    ];
    for (const init of attempts) {
      const res = await fetch(retry, init);
      expect(res.status).toBe(403);
      expect(await res.text()).not.toMatch(/at .*\.ts:\d+/);
    }
    expect(stateOf(await snapshotOf(db().connection, 'broken'), 'only').status).toBe('failed');
  });

  it('answers 403 to a cross-site form post in the browser', async () => {
    const page = await browser.newPage();
    await page.goto(url(open, '/containers/broken'));
    await page.locator('tr[data-task="only"]').waitFor();
    // Another origin (the same server under another host name) posts a form to the action.
    const other = url(open, '/').replace('127.0.0.1', 'localhost');
    await page.goto(other);
    const [response] = await Promise.all([
      page.waitForNavigation(),
      page.evaluate(
        `const form = document.createElement('form'); form.method = 'POST'; form.action = ${JSON.stringify(url(open, '/api/containers/broken/retry'))}; document.body.appendChild(form); form.submit();`,
      ),
    ]);
    expect(response!.status()).toBe(403);
    expect(stateOf(await snapshotOf(db().connection, 'broken'), 'only').status).toBe('failed');
    await page.close();
  });

  it('hides and refuses actions when read-only', async () => {
    const page = await browser.newPage();
    await page.goto(url(readOnly, '/containers/broken'));
    await page.locator('tr[data-task="only"]').waitFor();
    expect(await page.locator('button[data-action]').count()).toBe(0);
    await page.close();
    const { cookie, token } = await session(readOnly);
    const res = await fetch(url(readOnly, '/api/containers/broken/retry'), { method: 'POST', headers: { cookie, 'x-csrf-token': token } });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: string }).error).toMatch(/read-only/);
    expect(stateOf(await snapshotOf(db().connection, 'broken'), 'only').status).toBe('failed');
  });

  it('answers 404 to an action on an unknown task', async () => {
    const { cookie, token } = await session(open);
    const res = await fetch(url(open, '/api/containers/broken/tasks/ghost/retry'), { method: 'POST', headers: { cookie, 'x-csrf-token': token } });
    expect(res.status).toBe(404);
  });
});

describe('bad input', () => {
  it('shows a 404 page for an unknown container, without a stack trace', async () => {
    const page = await browser.newPage();
    const res = await page.goto(url(open, '/containers/no-such-thing'));
    expect(res!.status()).toBe(404);
    expect(await page.locator('section.error h1').textContent()).toBe('404 Not found');
    expect(await page.content()).not.toMatch(/\.ts:\d+|at async/);
    await page.close();
  });

  it('shows a 400 page for malformed query parameters', async () => {
    const page = await browser.newPage();
    for (const query of ['?status=exploded', '?after=%%%', '?after=bm90LWEtY3Vyc29y', '?colour=red']) {
      const res = await page.goto(url(open, `/${query}`));
      expect(res!.status(), query).toBe(400);
      expect(await page.locator('section.error').getAttribute('data-status')).toBe('400');
    }
    const api = await fetch(url(open, '/api/containers?status=exploded'));
    expect(api.status).toBe(400);
    await page.close();
  });
});

it('shows a banner while the database is unreachable and recovers by itself', async () => {
  const port = Number(new URL(db().uri).port);
  const proxy = await startTcpProxy({ port });
  const connection = mongoose.createConnection(uriWithDb(`mongodb://127.0.0.1:${proxy.port}/`, db().dbName), { serverSelectionTimeoutMS: 3000 });
  await connection.asPromise();
  const dashboard = await serveDashboard({ store: await MongoStore.create(connection, { operationTimeoutMs: 1500, writeRetryMs: 1500 }) });
  const page = await browser.newPage();
  try {
    await page.goto(url(dashboard, '/containers/broken'));
    await page.locator('tr[data-task="only"]').waitFor();
    expect(await page.locator('#banner').isHidden()).toBe(true);
    proxy.blackhole();
    await page.locator('#banner').waitFor({ state: 'visible', timeout: 45_000 });
    expect(await page.locator('#banner').textContent()).toMatch(/Database unavailable/);
    await page.screenshot({ path: artifactPath('dashboard-outage.png') });
    proxy.heal();
    await page.locator('#banner').waitFor({ state: 'hidden', timeout: 45_000 });
    expect(await page.locator('tr[data-task="only"]').getAttribute('data-status')).toBe('failed');
  } finally {
    await page.close();
    await dashboard.close();
    proxy.heal();
    await connection.close(true);
    await proxy.close();
  }
}, 120_000);
