/**
 * Folder listings in the styles of Apache, nginx and IIS (issue 14, Proof:
 * a hostile feed with "listing styles of Apache, nginx and IIS"): the feed
 * client finds every archive and `.md5` in each style and layout, and the job
 * as a real process ingests a feed listed by nginx and by IIS exactly.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EpfFeed } from '../src/ingest/epf/feed/client.js';
import { parseAutoindex } from '../src/ingest/epf/feed/listing.js';
import { LISTING_STYLES, renderListing, type ListingStyle } from '../src/ingest/epf/fixture/listing-styles.js';
import { startFixtureFeed, type FixtureFeed } from '../src/ingest/epf/fixture/server.js';
import { killChildrenAfterEach } from './support/child.js';
import { useTestDatabase } from './support/database.js';
import { EPF_FIXTURES, runEpfJobOk } from './support/epf-job.js';
import { expectTablesAsGenerated } from './support/epf-tables.js';

killChildrenAfterEach();

/** What tells each style's pages apart (so a style that fell back to Apache's is noticed). */
const MARKS: Record<ListingStyle, { page: RegExp; server: RegExp }> = {
  apache: { page: /<table>[\s\S]*Parent Directory[\s\S]*<address>Apache/, server: /^Apache\// },
  nginx: { page: /<hr><pre><a href="\.\.\/">\.\.\/<\/a>\r\n/, server: /^nginx\// },
  iis: { page: /<pre><A HREF="\/[^"]*">\[To Parent Directory\]<\/A><br><br>.*&lt;dir&gt; <A HREF="\//, server: /^Microsoft-IIS\// },
};

async function rootPage(feed: FixtureFeed, url = feed.baseUrl): Promise<{ html: string; server: string }> {
  const auth = `Basic ${Buffer.from(`${feed.username}:${feed.password}`).toString('base64')}`;
  const res = await fetch(url, { headers: { authorization: auth } });
  return { html: await res.text(), server: res.headers.get('server') ?? '' };
}

describe.each(LISTING_STYLES)('a feed listed by %s', (style) => {
  it.each(['v5', 'v3'] as const)('%s layout: the client finds every archive with its .md5 and size', async (layout) => {
    const feed = await startFixtureFeed({ dir: EPF_FIXTURES, layout, listingStyle: style });
    try {
      const { html, server } = await rootPage(feed);
      expect(html).toMatch(MARKS[style].page);
      expect(server).toMatch(MARKS[style].server);

      const client = new EpfFeed({ baseUrl: feed.baseUrl, username: feed.username, password: feed.password, layout });
      const listed = await client.listFiles();
      const paths = (urls: string[]) => urls.map((u) => new URL(u, feed.origin).pathname).sort();
      expect(paths(listed.map((f) => f.url))).toEqual(paths(feed.manifest.files.map((f) => f.path)));
      expect(listed.every((f) => f.ready)).toBe(true);

      const plan = await client.plan();
      const planned = [...plan.full, ...plan.incrementals];
      expect(planned).toHaveLength(feed.manifest.files.length);
      for (const f of planned) {
        const made = feed.manifest.files.find((m) => m.path === new URL(f.url).pathname)!;
        expect(f.size, f.url).toBe(made.size);
        expect(await client.fetchMd5(f), f.url).toBe(made.md5);
      }
    } finally {
      await feed.stop();
    }
  });
});

it('nginx cuts long names in the link text ("..>"); the client reads the whole name from the href', () => {
  const name = 'free_application_popularity_per_genre_and_storefront_by_device.tbz';
  const page = renderListing('nginx', '/feeds/epf/v5/current/popularity20250427/', [{ name, isDir: false, size: 1, mtimeMs: 0 }], { column: 'N', order: 'A' });
  expect(page).toContain('..&gt;</a>');
  expect(parseAutoindex(page, 'https://feed.test/feeds/epf/v5/current/popularity20250427/').map((e) => e.name)).toEqual([name]);
});

it('IIS matches paths without regard to case: an EPF_BASE_URL spelled in another case than the links finds every file', async () => {
  const feed = await startFixtureFeed({ dir: EPF_FIXTURES, layout: 'v5', listingStyle: 'iis' });
  try {
    const base = new URL(feed.baseUrl);
    const upper = `${base.origin}${base.pathname.toUpperCase()}`; // e.g. /FEEDS/EPF/V5/CURRENT/; the links say /feeds/epf/v5/current/
    const { html } = await rootPage(feed, upper);
    expect(html).toContain(`<A HREF="${base.pathname}`);
    const client = new EpfFeed({ baseUrl: upper, username: feed.username, password: feed.password, layout: 'v5' });
    const listed = await client.listFiles();
    expect(listed.map((f) => new URL(f.url).pathname).sort()).toEqual(feed.manifest.files.map((f) => f.path).sort());
  } finally {
    await feed.stop();
  }
});

it('Apache and nginx paths are case-sensitive: a link in another case than the page is another folder, and is skipped', () => {
  const entries = [{ name: 'application.tbz', isDir: false, size: 1, mtimeMs: 0 }];
  for (const style of ['apache', 'nginx'] as const) {
    // Absolute links, as a server would write them for /feeds/epf/v5/current/itunes20250427/.
    const page = renderListing(style, '/feeds/epf/v5/current/itunes20250427/', entries, { column: 'N', order: 'A' }).replaceAll(
      'href="application.tbz"',
      'href="/feeds/epf/v5/current/itunes20250427/application.tbz"',
    );
    expect(parseAutoindex(page, 'https://feed.test/feeds/epf/v5/current/itunes20250427/').map((e) => e.name), style).toEqual(['application.tbz']);
    expect(parseAutoindex(page, 'https://feed.test/FEEDS/EPF/v5/current/itunes20250427/'), style).toEqual([]);
  }
  const iis = renderListing('iis', '/feeds/epf/v5/current/itunes20250427/', entries, { column: 'N', order: 'A' });
  expect(parseAutoindex(iis, 'https://feed.test/FEEDS/EPF/v5/current/itunes20250427/', { caseInsensitivePaths: true }).map((e) => e.url)).toEqual([
    'https://feed.test/feeds/epf/v5/current/itunes20250427/application.tbz',
  ]);
});

describe.each(['nginx', 'iis'] as const)('the job against a feed listed by %s', (style) => {
  it('ingests every table exactly', async () => {
    const db = await useTestDatabase();
    const feed = await startFixtureFeed({ dir: EPF_FIXTURES, layout: 'v5', listingStyle: style });
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), `pts-epf-${style}-`));
    try {
      const summary = await runEpfJobOk({ db, feed, workDir });
      expect(summary.files.ingested).toBe(feed.manifest.files.length);
      await expectTablesAsGenerated(db, feed);
    } finally {
      await feed.stop();
      await db.drop();
      fs.rmSync(workDir, { recursive: true, force: true });
    }
  }, 600_000);
});
