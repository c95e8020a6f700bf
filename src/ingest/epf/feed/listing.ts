/**
 * Apache autoindex listings, read with htmlparser2 (no regular expressions
 * over HTML). EPF.md: "A client finds links ... by reading every href"; skip
 * `?C=...` sort links, the parent link and anything outside the folder.
 */
import { Parser } from 'htmlparser2';

/** One child of a listed folder. */
export interface ListingEntry {
  /** Decoded name without trailing slash, e.g. 'itunes20250427' or 'application.tbz'. */
  name: string;
  /** Absolute URL (folders end with '/'). */
  url: string;
  isDir: boolean;
}

/**
 * Whether a listing page comes from IIS: its `Server` header, or the
 * `[To Parent Directory]` link of IIS directory browsing (a proxy may drop
 * the header). IIS matches URL paths without regard to case.
 */
export function isIisListing(serverHeader: string | null, html: string): boolean {
  return /Microsoft-IIS/i.test(serverHeader ?? '') || html.includes('>[To Parent Directory]</');
}

/**
 * Direct children linked from an autoindex page at `pageUrl`. Kept: `<a href>`
 * that resolve to a direct child of the page's folder. Skipped: sort links
 * (`?C=N;O=D`), fragments, the parent and other folders' links, non-HTTP
 * schemes, and duplicates. With `caseInsensitivePaths` (IIS, which serves
 * `/EPF/v5/` and `/epf/v5/` alike) the folder's path is compared without
 * regard to case; the host always is, by URL rules; the child's name keeps
 * the link's case.
 */
export function parseAutoindex(html: string, pageUrl: string, o: { caseInsensitivePaths?: boolean } = {}): ListingEntry[] {
  const base = new URL(pageUrl);
  const folder = base.pathname.endsWith('/') ? base.pathname : base.pathname.replace(/[^/]*$/, '');
  // URL paths are percent-encoded ASCII, so lower-casing keeps their length.
  const inFolder = o.caseInsensitivePaths
    ? (p: string) => p.slice(0, folder.length).toLowerCase() === folder.toLowerCase()
    : (p: string) => p.startsWith(folder);
  const seen = new Set<string>();
  const entries: ListingEntry[] = [];
  const parser = new Parser(
    {
      onopentag(tag, attrs) {
        if (tag !== 'a' || attrs.href === undefined) return;
        const href = attrs.href.trim();
        if (href === '' || href.startsWith('?') || href.startsWith('#')) return;
        let target: URL;
        try {
          target = new URL(href, base);
        } catch {
          return;
        }
        if (target.origin !== base.origin || target.search !== '' || !inFolder(target.pathname)) return;
        const rest = target.pathname.slice(folder.length);
        const isDir = rest.endsWith('/');
        const raw = isDir ? rest.slice(0, -1) : rest;
        if (raw === '' || raw.includes('/')) return; // the folder itself, or deeper
        let name: string;
        try {
          name = decodeURIComponent(raw);
        } catch {
          return;
        }
        if (name === '.' || name === '..' || seen.has(name)) return;
        seen.add(name);
        target.hash = '';
        entries.push({ name, url: target.href, isDir });
      },
    },
    { decodeEntities: true, lowerCaseTags: true },
  );
  parser.write(html);
  parser.end();
  return entries;
}
