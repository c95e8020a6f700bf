/**
 * HTTP requests that carry the feed's credentials to the feed's own origin
 * only (issue 14, "Credentials leak across hosts"): redirects are followed by
 * hand, and `Authorization` is set again on every hop whose origin (scheme,
 * host, port) is the feed's, and never on any other. WHATWG fetch strips it on
 * a cross-origin redirect of a GET it follows itself, but a client that sets
 * headers per request (HEAD, `.md5`, listings after a redirected listing) must
 * decide per hop.
 */

/** Most redirects followed for one request (browsers use 20; a loop stops much sooner). */
export const MAX_REDIRECTS = 10;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** A redirect chain that loops or is longer than {@link MAX_REDIRECTS}. */
export class RedirectLoopError extends Error {
  constructor(
    readonly url: string,
    readonly hops: string[],
  ) {
    super(`Too many redirects (${hops.length}) from ${url}${new Set(hops).size < hops.length ? ' (a loop)' : ''}: ${hops.slice(0, 4).join(' -> ')}${hops.length > 4 ? ' -> ...' : ''}`);
    this.name = 'RedirectLoopError';
  }
}

/** Options of {@link fetchWithinOrigin}. */
export interface OriginFetchOptions {
  /** `Authorization` header value, sent only to `origin`. */
  authorization?: string;
  /** The feed's origin, e.g. `https://feeds.itunes.apple.com`. @defaultValue the first URL's origin */
  origin?: string;
  fetch?: typeof fetch;
}

/**
 * `fetch(url, init)` following redirects by hand; `Authorization` goes only to
 * `origin`. The returned response's `finalUrl` is the URL that answered.
 * A 303 (or a 301/302 of a non-HEAD) becomes a GET, as browsers do.
 * @throws RedirectLoopError after {@link MAX_REDIRECTS} hops; fetch's own errors as is.
 */
export async function fetchWithinOrigin(
  url: string,
  init: RequestInit & { headers?: Record<string, string> },
  o: OriginFetchOptions = {},
): Promise<{ res: Response; finalUrl: string }> {
  const doFetch = o.fetch ?? globalThis.fetch;
  const origin = o.origin ?? new URL(url).origin;
  let current = url;
  let method = init.method ?? 'GET';
  const hops: string[] = [];
  for (;;) {
    const headers: Record<string, string> = { ...(init.headers ?? {}) };
    for (const k of Object.keys(headers)) if (k.toLowerCase() === 'authorization') delete headers[k];
    if (o.authorization && new URL(current).origin === origin) headers.Authorization = o.authorization;
    const res = await doFetch(current, { ...init, method, headers, redirect: 'manual' });
    const location = res.headers.get('location');
    if (!REDIRECTS.has(res.status) || !location) return { res, finalUrl: current };
    await res.body?.cancel().catch(() => undefined);
    const next = new URL(location, current).href;
    hops.push(next);
    if (hops.length > MAX_REDIRECTS) throw new RedirectLoopError(url, hops);
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && method !== 'HEAD')) method = method === 'HEAD' ? 'HEAD' : 'GET';
    current = next;
  }
}
