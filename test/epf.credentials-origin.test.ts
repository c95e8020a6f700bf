/**
 * Credentials go only to the feed's own origin, on every request and after
 * every redirect (issue 14, E): listings, HEAD, `.md5` and archive GETs are
 * redirected to another origin (another port of 127.0.0.1 is another origin),
 * which must never see `Authorization`; a redirect back to the feed gets it
 * again. A redirect loop is a typed error, not a hang.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EpfFeed } from '../src/ingest/epf/feed/client.js';
import { EpfRedirectError } from '../src/ingest/epf/feed/errors.js';
import { downloadResumable } from '../src/ingest/epf/transfer/download.js';
import { DownloadHttpError } from '../src/ingest/epf/transfer/errors.js';

interface Seen {
  method: string;
  path: string;
  authorization?: string;
}

const USER = 'fake-user';
const PASS = 'fake-password-not-real';
const AUTH = `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`;
const archive = crypto.randomBytes(50_000);
const md5 = crypto.createHash('md5').update(archive).digest('hex');

function listen(handler: http.RequestListener): Promise<{ server: http.Server; origin: string }> {
  const server = http.createServer(handler);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })));
}

let feed: { server: http.Server; origin: string };
let other: { server: http.Server; origin: string };
const seenFeed: Seen[] = [];
const seenOther: Seen[] = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'epf-origin-'));

beforeAll(async () => {
  other = await listen((req, res) => {
    seenOther.push({ method: req.method!, path: req.url!, authorization: req.headers.authorization });
    if (req.url === '/mirror/listing/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end('<html><body><table><tr><td><a href="application.tbz">application.tbz</a></td></tr></table></body></html>');
    }
    if (req.url!.startsWith('/mirror/') && req.url!.endsWith('/application.tbz.md5')) return res.end(`MD5 (application.tbz) = ${md5}\n`);
    if (req.url!.startsWith('/mirror/') && req.url!.endsWith('/application.tbz')) {
      res.writeHead(200, { 'content-length': archive.length });
      return res.end(req.method === 'HEAD' ? undefined : archive);
    }
    if (req.url === '/bounce/back.tbz') {
      res.writeHead(302, { location: `${feed.origin}/feeds/epf/v5/current/home.tbz` });
      return res.end();
    }
    res.writeHead(404).end();
  });
  feed = await listen((req, res) => {
    seenFeed.push({ method: req.method!, path: req.url!, authorization: req.headers.authorization });
    if (req.headers.authorization !== AUTH) return res.writeHead(401).end();
    const to = (location: string) => res.writeHead(302, { location }).end();
    const url = req.url!;
    if (url === '/feeds/epf/v5/current/listing/') return to(`${other.origin}/mirror/listing/`);
    if (url === '/feeds/epf/v5/current/application.tbz') return to(`${other.origin}/mirror/application.tbz`);
    if (url === '/feeds/epf/v5/current/application.tbz.md5') return to(`${other.origin}/mirror/application.tbz.md5`);
    if (url === '/feeds/epf/v5/current/roundtrip.tbz') return to(`${other.origin}/bounce/back.tbz`);
    if (url === '/feeds/epf/v5/current/home.tbz') {
      res.writeHead(200, { 'content-length': archive.length });
      return res.end(req.method === 'HEAD' ? undefined : archive);
    }
    if (url === '/feeds/epf/v5/current/loop.tbz') return to('/feeds/epf/v5/current/loop2.tbz');
    if (url === '/feeds/epf/v5/current/loop2.tbz') return to('/feeds/epf/v5/current/loop.tbz');
    res.writeHead(404).end();
  });
});

afterAll(() => {
  feed.server.close();
  other.server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('credentials and redirects across origins', () => {
  it('never sends Authorization to another origin: listing, HEAD, .md5 and GET, from the feed client and the download', async () => {
    const client = new EpfFeed({ baseUrl: `${feed.origin}/feeds/epf/v5/current/`, username: USER, password: PASS, retries: 0 });
    const listing = await client.listDirectory(`${feed.origin}/feeds/epf/v5/current/listing/`);
    expect(listing.map((e) => e.name)).toEqual(['application.tbz']);
    // The listing's links now point at the other origin: requests there go without credentials.
    const linked = listing[0]!.url;
    expect(new URL(linked).origin).toBe(other.origin);
    expect(await client.head(linked)).toMatchObject({ size: archive.length });
    expect(await client.fetchMd5({ name: 'application.tbz', md5Url: `${linked}.md5` })).toBe(md5);
    await downloadResumable({
      url: linked, feedOrigin: feed.origin, dest: path.join(tmp, 'linked.tbz'), auth: { username: USER, password: PASS },
      checkpoint: async () => undefined, retries: 0,
    });
    expect(await client.head(`${feed.origin}/feeds/epf/v5/current/application.tbz`)).toMatchObject({ size: archive.length });
    expect(await client.fetchMd5({ name: 'application.tbz', md5Url: `${feed.origin}/feeds/epf/v5/current/application.tbz.md5` })).toBe(md5);
    const got = await downloadResumable({
      url: `${feed.origin}/feeds/epf/v5/current/application.tbz`, dest: path.join(tmp, 'a.tbz'), auth: { username: USER, password: PASS },
      checkpoint: async () => undefined, retries: 0,
    });
    expect(got.md5).toBe(md5);

    const methods = seenOther.map((s) => `${s.method} ${s.path}`);
    expect(methods).toEqual(expect.arrayContaining([
      'GET /mirror/listing/', 'HEAD /mirror/application.tbz', 'GET /mirror/application.tbz.md5', 'GET /mirror/application.tbz',
    ]));
    expect(seenOther.filter((s) => s.authorization !== undefined)).toEqual([]);
    expect(seenFeed.length).toBeGreaterThanOrEqual(4);
    expect(seenFeed.every((s) => s.authorization === AUTH)).toBe(true);
  });

  it('sends them again when a redirect comes back to the feed origin', async () => {
    const before = seenFeed.length;
    const client = new EpfFeed({ baseUrl: `${feed.origin}/feeds/epf/v5/current/`, username: USER, password: PASS, retries: 0 });
    expect(await client.head(`${feed.origin}/feeds/epf/v5/current/roundtrip.tbz`)).toMatchObject({ size: archive.length });
    const got = await downloadResumable({
      url: `${feed.origin}/feeds/epf/v5/current/roundtrip.tbz`, dest: path.join(tmp, 'b.tbz'), auth: { username: USER, password: PASS },
      checkpoint: async () => undefined, retries: 0,
    });
    expect(got.md5).toBe(md5);
    expect(seenFeed.slice(before).map((s) => [s.method, s.path, s.authorization])).toEqual([
      ['HEAD', '/feeds/epf/v5/current/roundtrip.tbz', AUTH], ['HEAD', '/feeds/epf/v5/current/home.tbz', AUTH],
      ['GET', '/feeds/epf/v5/current/roundtrip.tbz', AUTH], ['GET', '/feeds/epf/v5/current/home.tbz', AUTH],
    ]);
    expect(seenOther.filter((s) => s.path === '/bounce/back.tbz').map((s) => s.authorization)).toEqual([undefined, undefined]);
  });

  it('a redirect loop is a typed, non-retryable error for HEAD and for the download', async () => {
    const client = new EpfFeed({ baseUrl: `${feed.origin}/feeds/epf/v5/current/`, username: USER, password: PASS, retries: 0 });
    await expect(client.head(`${feed.origin}/feeds/epf/v5/current/loop.tbz`)).rejects.toBeInstanceOf(EpfRedirectError);
    const err = await downloadResumable({
      url: `${feed.origin}/feeds/epf/v5/current/loop.tbz`, dest: path.join(tmp, 'c.tbz'), auth: { username: USER, password: PASS },
      checkpoint: async () => undefined, retries: 0,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadHttpError);
    expect((err as Error).message).toMatch(/loop/);
  });
});
