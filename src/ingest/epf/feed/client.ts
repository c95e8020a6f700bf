/**
 * The EPF feed client: reads Apache autoindex listings behind HTTP Basic auth,
 * finds the drops of the v5 or v3 layout, and plans what to ingest
 * (EPF.md: server layout; issue 6: "Feed client").
 */
import { dateFolders, dropFolders, planFiles, tbzFiles, DROP_NAME, type EpfLayout, type EpfPlan, type FeedFile } from './discover.js';
import { EpfAuthError, EpfHttpError, EpfListingError, EpfNetworkError, EpfRedirectError, EpfTimeoutError } from './errors.js';
import { isIisListing, parseAutoindex, type ListingEntry } from './listing.js';
import { parseMd5File } from '../transfer/md5.js';
import { fetchWithinOrigin, RedirectLoopError } from '../transfer/origin-fetch.js';

export type { EpfLayout, EpfPlan, FeedFile } from './discover.js';

/**
 * Apple's v5 feed root (EPF.md: "v5 layout (current, what a user in 2025-2026
 * polls)" under `/feeds/epf/`). Needs real EPF credentials; not reachable from tests.
 */
export const APPLE_EPF_V5_URL = 'https://feeds.itunes.apple.com/feeds/epf/v5/current/';

/** Options of {@link EpfFeed}. */
export interface EpfFeedOptions {
  /** Feed root: v5 `.../feeds/epf/v5/current/`, v3 `.../feeds/epf/v3/full/`. @defaultValue APPLE_EPF_V5_URL */
  baseUrl?: string;
  username?: string;
  password?: string;
  /** @defaultValue 'v5' */
  layout?: EpfLayout;
  /** @defaultValue globalThis.fetch */
  fetch?: typeof fetch;
  /** Cancels every request of this client. */
  signal?: AbortSignal;
  /** Per request (headers and body), ms. @defaultValue 30_000 */
  timeoutMs?: number;
  /** Listing and HEAD requests in flight at once. @defaultValue 4 */
  concurrency?: number;
  /**
   * Extra tries of one request after a transient failure (5xx, 408, 429, a
   * reset connection, a timeout), with exponential backoff from
   * `retryDelayMs` or the server's `Retry-After`. A listing walks dozens of
   * pages: without this, one 503 among them fails the whole discovery.
   * @defaultValue 4
   */
  retries?: number;
  /** First backoff, ms (doubles per try, at most 30 s). @defaultValue 500 */
  retryDelayMs?: number;
}

/** Client of one EPF-style feed. Holds no state between calls besides its options. */
export class EpfFeed {
  readonly baseUrl: string;
  readonly layout: EpfLayout;
  private readonly fetchFn: typeof fetch;
  private readonly authorization?: string;
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  /** Credentials go to this origin only (the base URL's). */
  private readonly origin: string;

  constructor(private readonly o: EpfFeedOptions = {}) {
    const base = o.baseUrl ?? APPLE_EPF_V5_URL;
    this.baseUrl = base.endsWith('/') ? base : `${base}/`;
    this.origin = new URL(this.baseUrl).origin;
    this.layout = o.layout ?? 'v5';
    if (this.layout !== 'v5' && this.layout !== 'v3') throw new RangeError(`Invalid option "layout": ${String(this.layout)} (v5 or v3)`);
    this.fetchFn = o.fetch ?? globalThis.fetch;
    this.timeoutMs = o.timeoutMs ?? 30_000;
    this.concurrency = Math.max(1, o.concurrency ?? 4);
    if (o.username !== undefined || o.password !== undefined) {
      this.authorization = `Basic ${Buffer.from(`${o.username ?? ''}:${o.password ?? ''}`).toString('base64')}`;
    }
  }

  /**
   * Every `.tbz` of every drop the feed lists, with `ready` from the `.md5` next to it.
   * A drop folder whose listing fails is left out and added to `failedListings`.
   * @throws EpfAuthError, or the errors of the root listing (EpfHttpError, EpfTimeoutError,
   *   EpfNetworkError); EpfListingError when the root lists no EPF drop (a wrong base URL)
   */
  async listFiles(failedListings: Array<{ url: string; reason: string }> = []): Promise<FeedFile[]> {
    return this.layout === 'v5' ? this.listV5(failedListings) : this.listV3(failedListings);
  }

  /**
   * What to ingest: per group the newest full export whose files are all ready,
   * and the incrementals after it by date (see `planFiles`). Planned files carry
   * `size` and `etag` from a HEAD request.
   */
  async plan(): Promise<EpfPlan> {
    const failedListings: EpfPlan['failedListings'] = [];
    const plan = planFiles(await this.listFiles(failedListings));
    plan.failedListings = failedListings;
    await this.pool([...plan.full, ...plan.incrementals], async (f) => {
      try {
        Object.assign(f, await this.head(f.url));
      } catch (err) {
        if (err instanceof EpfAuthError) throw err;
        f.error = `HEAD failed: ${(err as Error).message}`; // this file only
      }
    });
    return plan;
  }

  /** Runs `list` for one drop folder; a failure other than auth is recorded, not thrown. */
  private async tolerant<T>(url: string, failed: EpfPlan['failedListings'], list: () => Promise<T[]>): Promise<T[]> {
    try {
      return await list();
    } catch (err) {
      if (err instanceof EpfAuthError || this.o.signal?.aborted) throw err;
      failed.push({ url, reason: (err as Error).message });
      return [];
    }
  }

  private noDrops(): never {
    throw new EpfListingError(
      `${this.baseUrl} lists no EPF drops (${this.layout === 'v5' ? '<group><YYYYMMDD>/ folders' : '<YYYYMMDD>/ folders'}): ` +
        `is the feed URL the ${this.layout === 'v5' ? '.../v5/current/' : '.../v3/full/'} folder?`,
      this.baseUrl,
    );
  }

  /**
   * The md5 hex digest published for `file` (BSD format, EPF.md: .md5 companion files).
   * @throws Md5FormatError (transfer/errors.ts), or the HTTP errors of `listFiles` (404 while the .md5 is not posted yet)
   */
  async fetchMd5(file: Pick<FeedFile, 'md5Url' | 'name'>): Promise<string> {
    const { res } = await this.request(file.md5Url, 'GET');
    return parseMd5File(await this.readText(res, file.md5Url), file.name);
  }

  /** `Content-Length` (bytes) and `ETag` of a file, from HEAD. */
  async head(url: string): Promise<{ size?: number; etag?: string }> {
    const { res } = await this.request(url, 'HEAD');
    const out: { size?: number; etag?: string } = {};
    const length = res.headers.get('content-length');
    if (length !== null && /^\d+$/.test(length)) out.size = Number(length);
    const etag = res.headers.get('etag');
    if (etag) out.etag = etag;
    return out;
  }

  /** Children of one listing page (folder URLs end in '/'). */
  async listDirectory(url: string): Promise<ListingEntry[]> {
    const { res, finalUrl } = await this.request(url, 'GET');
    const type = res.headers.get('content-type') ?? '';
    const html = await this.readText(res, url);
    if (type && !type.includes('html')) throw new EpfListingError(`Expected an HTML listing, got ${type}: ${url}`, url);
    return parseAutoindex(html, finalUrl, { caseInsensitivePaths: isIisListing(res.headers.get('server'), html) });
  }

  private async listV5(failed: EpfPlan['failedListings']): Promise<FeedFile[]> {
    const root = await this.listDirectory(this.baseUrl);
    const fulls = dropFolders(root).map((d) => ({ ...d, kind: 'full' as FeedFile['kind'] }));
    const incrementalDir = root.find((e) => e.isDir && e.name === 'incremental');
    if (fulls.length === 0 && !incrementalDir) this.noDrops();
    let incrementals: typeof fulls = [];
    if (incrementalDir) {
      const current = (await this.listDirectory(incrementalDir.url)).find((e) => e.isDir && e.name === 'current');
      if (current) incrementals = dropFolders(await this.listDirectory(current.url)).map((d) => ({ ...d, kind: 'incremental' as FeedFile['kind'] }));
    }
    const lists = await this.pool([...fulls, ...incrementals], async (d) =>
      this.tolerant(d.entry.url, failed, async () =>
        tbzFiles(await this.listDirectory(d.entry.url), d.kind, (name) => ({ group: d.group, date: d.date, table: name.slice(0, -'.tbz'.length) })),
      ),
    );
    return lists.flat();
  }

  private async listV3(failed: EpfPlan['failedListings']): Promise<FeedFile[]> {
    const describe = (date: string) => (name: string) => {
      const m = DROP_NAME.exec(name.slice(0, -'.tbz'.length));
      return m && m[2] === date ? { group: m[1]!, date } : null;
    };
    const dates = dateFolders(await this.listDirectory(this.baseUrl));
    if (dates.length === 0) this.noDrops();
    const perFull = await this.pool(dates, async ({ entry, date }) => this.tolerant(entry.url, failed, async () => {
      const listing = await this.listDirectory(entry.url);
      const files = tbzFiles(listing, 'full', describe(date));
      const incrementalDir = listing.find((e) => e.isDir && e.name === 'incremental');
      if (!incrementalDir) return files;
      const days = dateFolders(await this.listDirectory(incrementalDir.url));
      const inc = await this.pool(days, async (d) =>
        this.tolerant(d.entry.url, failed, async () => tbzFiles(await this.listDirectory(d.entry.url), 'incremental', describe(d.date))),
      );
      return [...files, ...inc.flat()];
    }));
    // the same incremental may be listed under two full folders: keep one per URL path
    const byPath = new Map<string, FeedFile>();
    for (const f of perFull.flat()) byPath.set(new URL(f.url).pathname, f);
    return [...byPath.values()];
  }

  /**
   * One request with auth (sent to the feed's origin only, after every redirect), the client's signal
   * and a timeout; non-2xx answers become typed errors.
   * @throws EpfAuthError (401/403), EpfHttpError, EpfTimeoutError, EpfNetworkError, EpfRedirectError; the caller's abort reason as is
   */
  private async request(url: string, method: 'GET' | 'HEAD'): Promise<{ res: Response; finalUrl: string }> {
    const retries = this.o.retries ?? 4;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.requestOnce(url, method);
      } catch (err) {
        const transient =
          (err instanceof EpfHttpError && err.retryable) || err instanceof EpfNetworkError || err instanceof EpfTimeoutError;
        if (!transient || attempt >= retries || this.o.signal?.aborted) throw err;
        const backoff = Math.min(30_000, (this.o.retryDelayMs ?? 500) * 2 ** attempt);
        const wait = err instanceof EpfHttpError && err.retryAfterMs !== undefined ? Math.min(30_000, err.retryAfterMs) : backoff;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  private async requestOnce(url: string, method: 'GET' | 'HEAD'): Promise<{ res: Response; finalUrl: string }> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = this.o.signal ? AbortSignal.any([this.o.signal, timeout]) : timeout;
    let answer: { res: Response; finalUrl: string };
    try {
      answer = await fetchWithinOrigin(url, { method, signal }, { authorization: this.authorization, origin: this.origin, fetch: this.fetchFn });
    } catch (err) {
      if (err instanceof RedirectLoopError) throw new EpfRedirectError(url, err.message);
      throw this.wrapFailure(err, url, timeout);
    }
    const { res } = answer;
    if (res.ok) return answer;
    await res.body?.cancel().catch(() => undefined);
    if (res.status === 401 || res.status === 403) throw new EpfAuthError(url, res.status);
    throw new EpfHttpError(url, res.status, res.statusText, res.headers.get('retry-after'));
  }

  private async readText(res: Response, url: string): Promise<string> {
    try {
      return await res.text();
    } catch (err) {
      throw this.wrapFailure(err, url);
    }
  }

  private wrapFailure(err: unknown, url: string, timeout?: AbortSignal): unknown {
    if (this.o.signal?.aborted) return this.o.signal.reason;
    if (timeout?.aborted || (err as Error)?.name === 'TimeoutError') return new EpfTimeoutError(url, this.timeoutMs);
    return new EpfNetworkError(url, err);
  }

  /** Map `items` through `fn` with at most `concurrency` in flight; results in input order. */
  private async pool<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
    const out: R[] = new Array(items.length);
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const k = next++;
        out[k] = await fn(items[k]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, items.length) }, worker));
    return out;
  }
}
