import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EpfFeed } from '../src/ingest/epf/feed/client.js';
import { EpfAuthError, EpfHttpError, EpfNetworkError, EpfTimeoutError } from '../src/ingest/epf/feed/errors.js';
import { parseAutoindex } from '../src/ingest/epf/feed/listing.js';
import { startFixtureFeed, type FixtureFeed } from '../src/ingest/epf/fixture/server.js';
import { readJsonl } from './support/side-effects.js';
import { makeTempDir } from './support/side-effects.js';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

describe('autoindex listings', () => {
  it('keeps direct children only: no sort links, parent links, icons, other hosts or duplicates', () => {
    const html = `<html><body><table>
      <tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th></tr>
      <tr><td><img src="/icons/back.gif"></td><td><a href="/feeds/epf/v5/">Parent Directory</a></td></tr>
      <tr><td><a href="../">Up</a></td><td><a HREF="itunes20250427/">itunes20250427/</a></td></tr>
      <tr><td><a href="application.tbz">application.tbz</a> <a href="application.tbz.md5">application.tbz.md5</a></td></tr>
      <tr><td><a href="my%20table.tbz">my table.tbz</a><a href="application.tbz">again</a></td></tr>
      <tr><td><a href="/icons/blank.gif">x</a><a href="https://elsewhere.test/feeds/epf/v5/current/x.tbz">x</a>
        <a href="mailto:epf@example.test">mail</a><a href="#top">top</a><a>no href</a><a href="deeper/x.tbz">deep</a></td></tr>
      </table></body></html>`;
    const entries = parseAutoindex(html, 'https://feeds.example.test/feeds/epf/v5/current/');
    expect(entries).toEqual([
      { name: 'itunes20250427', url: 'https://feeds.example.test/feeds/epf/v5/current/itunes20250427/', isDir: true },
      { name: 'application.tbz', url: 'https://feeds.example.test/feeds/epf/v5/current/application.tbz', isDir: false },
      { name: 'application.tbz.md5', url: 'https://feeds.example.test/feeds/epf/v5/current/application.tbz.md5', isDir: false },
      { name: 'my table.tbz', url: 'https://feeds.example.test/feeds/epf/v5/current/my%20table.tbz', isDir: false },
    ]);
  });

});

describe('EPF feed client against the fixture feed', () => {
  let dir: string;
  let v5: FixtureFeed;
  let v3: FixtureFeed;
  const client = (feed: FixtureFeed, extra: Partial<ConstructorParameters<typeof EpfFeed>[0]> = {}) =>
    new EpfFeed({ baseUrl: feed.baseUrl, username: feed.username, password: feed.password, layout: feed.layout, ...extra });

  beforeAll(async () => {
    dir = makeTempDir('epf-feed-');
    v5 = await startFixtureFeed({ dir, layout: 'v5', accessLog: path.join(dir, 'access.jsonl') });
    v3 = await startFixtureFeed({ dir, layout: 'v3' });
  });
  afterAll(async () => {
    await v5?.stop();
    await v3?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('v5 plan: the full export of each group and the incrementals after it, by date, with size and ETag', async () => {
    const plan = await client(v5).plan();
    expect(plan.waiting).toEqual([]);
    expect(plan.full.map((f) => `${f.drop}/${f.name}`)).toEqual([
      'itunes20250427/application.tbz', 'itunes20250427/application_detail.tbz', 'itunes20250427/artist_application.tbz',
      'itunes20250427/genre.tbz', 'itunes20250427/storefront.tbz', 'popularity20250427/free_application_popularity_per_genre.tbz',
      'pricing20250427/application_price.tbz',
    ]);
    expect(plan.incrementals.map((f) => f.date)).toEqual([...Array(7).fill('20250429'), ...Array(7).fill('20250430')]);
    for (const f of [...plan.full, ...plan.incrementals]) {
      const m = v5.manifest.files.find((x) => v5.origin + x.path === f.url)!;
      expect(f).toMatchObject({ ready: true, size: m.size, group: m.group, date: m.date, kind: m.kind, md5Url: `${f.url}.md5` });
      expect(f.table).toBe(f.name.replace(/\.tbz$/, ''));
      expect(f.etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    }
    expect(await client(v5).fetchMd5(plan.full[0]!)).toBe(v5.manifest.files.find((x) => v5.origin + x.path === plan.full[0]!.url)!.md5);
  });

  it('v3 plan: <group><date>.tbz under full/<date>/ and its incremental/<date>/ folders, skipping current/', async () => {
    const plan = await client(v3).plan();
    expect(plan.full.map((f) => f.url.slice(v3.origin.length))).toEqual([
      '/feeds/epf/v3/full/20130130/itunes20130130.tbz', '/feeds/epf/v3/full/20130130/popularity20130130.tbz',
      '/feeds/epf/v3/full/20130130/pricing20130130.tbz',
    ]);
    expect(plan.incrementals.map((f) => `${f.date} ${f.group}`)).toEqual([
      '20130131 itunes', '20130131 popularity', '20130131 pricing', '20130201 itunes', '20130201 popularity', '20130201 pricing',
    ]);
    expect(plan.incrementals.every((f) => f.url.includes('/20130130/incremental/') && f.table === undefined && f.size! > 0)).toBe(true);
  });

  it('bad credentials: EpfAuthError, and the server logged a 401', async () => {
    const bad = client(v5, { password: 'wrong' });
    await expect(bad.listFiles()).rejects.toBeInstanceOf(EpfAuthError);
    await expect(client(v5, { username: undefined, password: undefined }).plan()).rejects.toMatchObject({ code: 'EPF_AUTH', status: 401 });
    expect(v5.accessLog().filter((e) => e.status === 401).length).toBeGreaterThanOrEqual(2);
  });

  it('a file is not ready until its .md5 is posted; later incrementals wait behind it', async () => {
    v5.setFaults({ lateMd5: { match: 'pricing20250429' } });
    try {
      const plan = await client(v5).plan();
      expect(plan.waiting.map((f) => f.drop)).toEqual(['pricing20250429', 'pricing20250430']);
      expect(plan.waiting[0]!.ready).toBe(false);
      expect(plan.waiting[1]!.ready).toBe(true);
      expect(plan.incrementals.some((f) => f.group === 'pricing')).toBe(false);
      await expect(client(v5).fetchMd5(plan.waiting[0]!)).rejects.toMatchObject({ status: 404 });
      v5.publishMd5(plan.waiting[0]!.url);
      const after = await client(v5).plan();
      expect(after.waiting).toEqual([]);
      expect(after.incrementals.filter((f) => f.group === 'pricing').map((f) => f.date)).toEqual(['20250429', '20250430']);

      // Posted 4 s after the faults are set: the first listing must come well
      // before that, also on a busy machine (a 300 ms delay was too short).
      const postedAt = performance.now() + 4_000;
      v5.setFaults({ lateMd5: { match: 'popularity20250430', delayMs: 4_000 } });
      expect((await client(v5).listFiles()).find((f) => f.drop === 'popularity20250430')!.ready).toBe(false);
      await new Promise((r) => setTimeout(r, Math.max(0, postedAt - performance.now()) + 100));
      expect((await client(v5).listFiles()).find((f) => f.drop === 'popularity20250430')!.ready).toBe(true);
    } finally {
      v5.setFaults({});
    }
  });

  it('picks the newest full whose files are all ready', async () => {
    const tree = makeTempDir('epf-tree-');
    const feed = await startFixtureFeed({ dir: tree, layout: 'v5' });
    try {
      const current = path.join(feed.root, 'feeds/epf/v5/current');
      for (const date of ['20250420', '20250504']) mkdirSync(path.join(current, `itunes${date}`));
      copyFileSync(path.join(current, 'itunes20250427/genre.tbz'), path.join(current, 'itunes20250420/genre.tbz'));
      copyFileSync(path.join(current, 'itunes20250427/genre.tbz.md5'), path.join(current, 'itunes20250420/genre.tbz.md5'));
      copyFileSync(path.join(current, 'itunes20250427/genre.tbz'), path.join(current, 'itunes20250504/genre.tbz'));
      let plan = await client(feed).plan();
      expect(new Set(plan.full.filter((f) => f.group === 'itunes').map((f) => f.date))).toEqual(new Set(['20250427']));
      expect(plan.waiting.map((f) => f.drop)).toEqual(['itunes20250504']);
      copyFileSync(path.join(current, 'itunes20250427/genre.tbz.md5'), path.join(current, 'itunes20250504/genre.tbz.md5'));
      plan = await client(feed).plan();
      expect(plan.full.filter((f) => f.group === 'itunes').map((f) => f.drop)).toEqual(['itunes20250504']);
      expect(plan.incrementals.filter((f) => f.group === 'itunes')).toEqual([]); // older than the new full
      expect(plan.full.filter((f) => f.group === 'pricing').map((f) => f.date)).toEqual(['20250427']);
    } finally {
      await feed.stop();
      rmSync(tree, { recursive: true, force: true });
    }
  });

  it('503s and wrong md5s are typed or visible to the caller, never hidden', async () => {
    const [file] = (await client(v5).plan()).full;
    v5.setFaults({ unavailable: { every: 2, retryAfterSeconds: 7 } });
    try {
      const once = client(v5, { retries: 0 });
      await once.head(file!.url);
      const err = await once.head(file!.url).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EpfHttpError);
      expect(err).toMatchObject({ status: 503, retryable: true, retryAfterMs: 7000, code: 'EPF_HTTP' });
      await once.head(file!.url);
      // By default a transient answer is tried again (after Retry-After), so one 503 in a walk does not fail it.
      v5.setFaults({ unavailable: { every: 2, retryAfterSeconds: 0 } });
      const before = v5.accessLog().length;
      await client(v5).head(file!.url);
      await client(v5).head(file!.url);
      expect(v5.accessLog().slice(before).map((e) => e.status)).toEqual([200, 503, 200]);
      v5.setFaults({ wrongMd5: {} });
      const expected = v5.manifest.files.find((x) => v5.origin + x.path === file!.url)!.md5;
      expect(await client(v5).fetchMd5(file!)).not.toBe(expected);
      expect(await client(v5).fetchMd5(file!)).toBe(expected);
      expect(v5.accessLog().filter((e) => e.fault === 'wrong-md5')).toHaveLength(1);
    } finally {
      v5.setFaults({});
    }
  });

  it('timeouts and refused connections are typed', async () => {
    const silent = http.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const { port } = silent.address() as AddressInfo;
    try {
      const err = await new EpfFeed({ baseUrl: `http://127.0.0.1:${port}/feeds/epf/v5/current/`, timeoutMs: 200 }).listFiles().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EpfTimeoutError);
      expect(err).toMatchObject({ timeoutMs: 200 });
    } finally {
      silent.closeAllConnections();
      await new Promise((r) => silent.close(r));
    }
    await expect(new EpfFeed({ baseUrl: `http://127.0.0.1:${port}/feeds/` }).listFiles()).rejects.toBeInstanceOf(EpfNetworkError);
    const ac = new AbortController();
    ac.abort(new Error('stop now'));
    await expect(client(v5, { signal: ac.signal }).listFiles()).rejects.toThrow('stop now');
  });
});

describe('fixture server: Range, ETag, HEAD, faults and the access log', () => {
  let dir: string;
  let feed: FixtureFeed;
  let url: string;
  let bytes: Buffer;
  const auth = () => ({ authorization: `Basic ${Buffer.from(`${feed.username}:${feed.password}`).toString('base64')}` });

  beforeAll(async () => {
    dir = makeTempDir('epf-server-');
    feed = await startFixtureFeed({ dir, accessLog: path.join(dir, 'access.jsonl') });
    const file = feed.manifest.files.find((f) => f.path.endsWith('itunes20250427/application_detail.tbz'))!;
    url = feed.origin + file.path;
    bytes = readFileSync(path.join(feed.root, file.path));
  });
  afterAll(async () => {
    await feed?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists folders as Apache autoindex pages, sortable with ?C=N;O=D', async () => {
    const page = async (q: string) => {
      const res = await fetch(`${feed.baseUrl}${q}`, { headers: auth() });
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      return parseAutoindex(await res.text(), feed.baseUrl).map((e) => e.name);
    };
    expect(await page('')).toEqual(['incremental', 'itunes20250427', 'popularity20250427', 'pricing20250427']);
    expect(await page('?C=N;O=D')).toEqual(['pricing20250427', 'popularity20250427', 'itunes20250427', 'incremental']);
    const html = await (await fetch(feed.baseUrl, { headers: auth() })).text();
    expect(html).toContain('<a href="/feeds/epf/v5/">Parent Directory</a>');
    expect(html).toContain('<a href="?C=N;O=D">Name</a>');
  });

  it('serves ranges (206, Content-Range), refuses impossible ones (416), answers HEAD, honours If-Range', async () => {
    const head = await fetch(url, { method: 'HEAD', headers: auth() });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(bytes.length));
    expect(head.headers.get('accept-ranges')).toBe('bytes');
    const etag = head.headers.get('etag')!;
    const part = await fetch(url, { headers: { ...auth(), range: 'bytes=100-1099' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-1099/${bytes.length}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(bytes.subarray(100, 1100));
    const tail = await fetch(url, { headers: { ...auth(), range: 'bytes=-10', 'if-range': etag } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(bytes.subarray(bytes.length - 10));
    const stale = await fetch(url, { headers: { ...auth(), range: 'bytes=100-', 'if-range': '"old"' } });
    expect(stale.status).toBe(200);
    expect(Buffer.from(await stale.arrayBuffer()).length).toBe(bytes.length);
    const beyond = await fetch(url, { headers: { ...auth(), range: `bytes=${bytes.length}-` } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${bytes.length}`);
    await beyond.arrayBuffer();
  });

  it('drops the connection after N bytes, then a Range request resumes where it stopped; the log proves it', async () => {
    feed.setFaults({ dropConnection: { afterBytes: 5000, times: 1 } });
    try {
      const res = await fetch(url, { headers: auth() });
      expect(res.status).toBe(200);
      await expect(res.arrayBuffer()).rejects.toThrow();
      const rest = await fetch(url, { headers: { ...auth(), range: 'bytes=5000-' } });
      expect(rest.status).toBe(206);
      const joined = Buffer.concat([bytes.subarray(0, 5000), Buffer.from(await rest.arrayBuffer())]);
      expect(md5(joined)).toBe(md5(bytes));
      const path1 = new URL(url).pathname;
      const entries = () => feed.accessLog().filter((e) => e.path === path1 && e.method === 'GET' && e.range !== 'bytes=100-1099');
      // Both responses are logged from their 'close' handlers: wait for the second one (a slow machine may lag).
      for (let i = 0; i < 100 && !entries().some((e) => e.range === 'bytes=5000-'); i++) await new Promise((r) => setTimeout(r, 50));
      const log = entries();
      const last2 = log.slice(-2);
      expect(last2).toMatchObject([
        { range: null, status: 200, bytes: 5000, fault: 'drop' },
        { range: 'bytes=5000-', status: 206, bytes: bytes.length - 5000 },
      ]);
      expect(readJsonl<{ path: string }>(path.join(dir, 'access.jsonl')).length).toBe(feed.accessLog().length);
    } finally {
      feed.setFaults({});
    }
  });

  it('trickles at the configured rate', async () => {
    feed.setFaults({ trickle: { bytesPerSecond: 20_000 } });
    try {
      const started = Date.now();
      const res = await fetch(url, { headers: { ...auth(), range: 'bytes=0-5999' } });
      expect((await res.arrayBuffer()).byteLength).toBe(6000);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250); // 6000 B at 20 kB/s = 300 ms
    } finally {
      feed.setFaults({});
    }
  });

  it('a re-post changes ETag and md5 but not the content', async () => {
    const client = new EpfFeed({ baseUrl: feed.baseUrl, username: feed.username, password: feed.password });
    const before = await client.head(url);
    const { md5: newMd5, size } = await feed.repost(url);
    const after = await client.head(url);
    expect(after.etag).not.toBe(before.etag);
    expect(after.size).toBe(size);
    const body = Buffer.from(await (await fetch(url, { headers: auth() })).arrayBuffer());
    expect(md5(body)).toBe(newMd5);
    expect(await client.fetchMd5({ md5Url: `${url}.md5`, name: path.basename(url) })).toBe(newMd5);
    expect(newMd5).not.toBe(md5(bytes));
    // the generator's cache is untouched
    expect(md5(readFileSync(path.join(feed.root, new URL(url).pathname)))).toBe(md5(bytes));
    writeFileSync(path.join(dir, 'done'), '');
  });
});
