import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Connection } from 'mongoose';
import { cancelContainer, retryTasks } from '../../engine/container-commands.js';
import { InvalidOptionError } from '../../errors.js';
import { openStore } from '../../status/inspect.js';
import type { ScheduleStore } from '../../store/schedule-types.js';
import type { ContainerStatus, TaskStore } from '../../store/types.js';
import { asset } from './assets.js';
import { decodeCursor, readContainer, readList, readRunners, readSchedules, UnknownContainer } from './data.js';
import { classify, cookies, HttpError, readJsonBody, sendJson, sendText } from './http.js';
import { LiveHub } from './live.js';
import { errorPage, shellPage, type PageKind } from './pages.js';

/** Decides whether a request may see the dashboard (true) or gets 401. */
export type DashboardAuth = (req: IncomingMessage) => boolean | Promise<boolean>;

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  /** The connection to read (mongoose's default connection when omitted). */
  connection?: Connection;
  /** A store to read instead of opening one on `connection`. */
  store?: TaskStore;
  /** Schedules to show (opened on `connection` by the CLI); none when omitted. */
  schedules?: ScheduleStore;
  /** @defaultValue 'pts' */
  collectionPrefix?: string;
  /** Hide and refuse (403) the retry and cancel actions. @defaultValue false */
  readOnly?: boolean;
  /** Authorises every request, assets included; false answers 401. See {@link basicAuth}. */
  auth?: DashboardAuth;
  /** Where the dashboard is mounted, e.g. `/pts` (no trailing slash). @defaultValue '' */
  basePath?: string;
  /** Extra text appended to `GET /metrics` (e.g. `createMetrics().registry.metrics()`). */
  metrics?: () => Promise<string>;
  /** Called with errors that pages only see as "database unavailable". */
  onError?: (error: unknown) => void;
}

/** A plain Node request handler with a `close()` that ends live streams. */
export interface DashboardHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** Ends every live stream and stops their readers. */
  close(): void;
}

const STATUSES: ReadonlySet<string> = new Set<ContainerStatus>(['running', 'succeeded', 'failed', 'cancelled']);
const CSRF_COOKIE = 'pts_csrf';
const BASIC = Symbol('basic-auth');

/**
 * An `auth` hook for HTTP Basic authentication with one user (compared in
 * constant time); browsers prompt for it (`WWW-Authenticate: Basic`).
 * Use it over HTTPS only: Basic sends the password with every request.
 */
export function basicAuth(user: string, password: string): DashboardAuth {
  const expected = Buffer.from(`${user}:${password}`);
  const check: DashboardAuth = (req) => {
    const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return false;
    const given = Buffer.from(Buffer.from(m[1]!, 'base64').toString('utf8'));
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  return Object.assign(check, { [BASIC]: true });
}

/**
 * The dashboard as a plain Node `(req, res)` handler, to mount in any server
 * (see docs/dashboard.md for Express, Fastify and Hono). Pages: the container
 * list (`/`), one container (`/containers/<name>`), schedules, runners; JSON
 * under `/api/`; live updates as Server-Sent Events (`/api/events`);
 * `GET /metrics` when `metrics` is given. Every asset is served from the
 * package (no CDN).
 *
 * Actions (`POST /api/containers/<name>/retry|cancel`,
 * `POST /api/containers/<name>/tasks/<task>/retry`) need the CSRF token the
 * page carries (header `x-csrf-token`, equal to the `pts_csrf` cookie set
 * with `SameSite=Strict`); a request without it gets 403, as every action
 * does when `readOnly`.
 *
 * Unknown containers answer 404, malformed parameters 400, database failures
 * 503 (the page shows a banner and recovers by itself); no answer carries a
 * stack trace.
 * @throws InvalidOptionError for a malformed `basePath`
 */
export function createDashboard(options: DashboardOptions = {}): DashboardHandler {
  const basePath = options.basePath ?? '';
  if (basePath && !/^(\/[A-Za-z0-9._~-]+)+$/.test(basePath)) {
    throw new InvalidOptionError('basePath', `must look like "/pts" (no trailing slash), got ${JSON.stringify(basePath)}`);
  }
  const onError = options.onError ?? (() => {});
  let storePromise: Promise<TaskStore> | null = null;
  const store = async (): Promise<TaskStore> => {
    storePromise ??= openStore({ store: options.store, connection: options.connection, collectionPrefix: options.collectionPrefix, readOnly: true });
    return storePromise.catch((error: unknown) => {
      storePromise = null; // try again on the next request
      throw error;
    });
  };
  const hub = new LiveHub(onError);
  const readOnly = options.readOnly ?? false;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    if (basePath && url.pathname !== basePath && !url.pathname.startsWith(`${basePath}/`)) throw new HttpError(404, 'not found');
    const path = url.pathname.slice(basePath.length) || '/';
    if (options.auth && !(await options.auth(req))) {
      const basic = (options.auth as { [BASIC]?: boolean })[BASIC];
      throw new HttpError(401, 'authentication required', basic ? { 'www-authenticate': 'Basic realm="persistent-task-status", charset="UTF-8"' } : {});
    }
    const method = req.method ?? 'GET';
    const parts = path.split('/').filter(Boolean).map((p) => decodePart(p));

    if (method === 'POST') return action(req, res, parts);
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'method not allowed', { allow: 'GET, HEAD, POST' });

    if (parts[0] === 'assets' && parts.length === 2) {
      const a = asset(parts[1]!);
      if (!a) throw new HttpError(404, 'not found');
      return sendText(res, 200, a.contentType, a.body, { 'cache-control': 'public, max-age=300' });
    }
    if (path === '/metrics') {
      if (!options.metrics) throw new HttpError(404, 'metrics are not enabled');
      return sendText(res, 200, 'text/plain; version=0.0.4; charset=utf-8', await options.metrics());
    }
    if (parts[0] === 'api') return api(req, res, parts.slice(1), url.searchParams);
    return page(req, res, parts, url.searchParams);
  };

  const page = async (req: IncomingMessage, res: ServerResponse, parts: string[], query: URLSearchParams): Promise<void> => {
    let kind: PageKind;
    let container: string | null = null;
    if (parts.length === 0) {
      listQuery(query); // 400 page for a malformed filter
      kind = 'list';
    } else if (parts.length === 1 && (parts[0] === 'schedules' || parts[0] === 'runners')) kind = parts[0];
    else if (parts.length === 2 && parts[0] === 'containers') {
      container = parts[1]!;
      const head = await (await store()).readContainerHead(container);
      if (!head) throw new HttpError(404, `no container named "${container}"`);
      kind = 'container';
    } else throw new HttpError(404, 'not found');
    const token = cookies(req).get(CSRF_COOKIE) ?? randomBytes(18).toString('base64url');
    const cookiePath = basePath || '/';
    sendText(res, 200, 'text/html; charset=utf-8', shellPage({ kind, container, basePath, csrfToken: token, readOnly }), {
      'set-cookie': `${CSRF_COOKIE}=${token}; Path=${cookiePath}; HttpOnly; SameSite=Strict`,
    });
  };

  const api = async (req: IncomingMessage, res: ServerResponse, parts: string[], query: URLSearchParams): Promise<void> => {
    const s = await store();
    if (parts.length === 1 && parts[0] === 'containers') return sendJson(res, 200, await readList(s, listQuery(query)));
    if (parts.length === 2 && parts[0] === 'containers') return sendJson(res, 200, await containerView(s, parts[1]!));
    if (parts.length === 1 && parts[0] === 'schedules') return sendJson(res, 200, await readSchedules(s, options.schedules));
    if (parts.length === 1 && parts[0] === 'runners') return sendJson(res, 200, await readRunners(s));
    if (parts.length === 1 && parts[0] === 'events') {
      const view = query.get('view');
      if (view === 'container') {
        const name = query.get('container');
        if (!name) throw new HttpError(400, 'the "container" parameter is missing');
        return hub.subscribe(`c:${name}`, () => containerView(s, name), req, res);
      }
      if (view === 'list') {
        const q = listQuery(query);
        return hub.subscribe(`l:${JSON.stringify(q)}`, () => readList(s, q), req, res);
      }
      if (view === 'schedules') return hub.subscribe('s', () => readSchedules(s, options.schedules), req, res);
      if (view === 'runners') return hub.subscribe('r', () => readRunners(s), req, res);
      throw new HttpError(400, 'the "view" parameter must be list, container, schedules or runners');
    }
    throw new HttpError(404, 'not found');
  };

  const action = async (req: IncomingMessage, res: ServerResponse, parts: string[]): Promise<void> => {
    if (readOnly) throw new HttpError(403, 'this dashboard is read-only');
    const cookie = cookies(req).get(CSRF_COOKIE);
    const header = req.headers['x-csrf-token'];
    if (!cookie || typeof header !== 'string' || !sameText(cookie, header)) throw new HttpError(403, 'missing or wrong CSRF token');
    const [api_, containers, name, verb, task, taskVerb] = parts;
    if (api_ !== 'api' || containers !== 'containers' || !name) throw new HttpError(404, 'not found');
    await readJsonBody(req);
    const s = await store();
    if (parts.length === 4 && verb === 'retry') return sendJson(res, 200, { retried: await retryTasks(s, name) });
    if (parts.length === 4 && verb === 'cancel') return sendJson(res, 200, { cancelled: await cancelContainer(s, name) });
    if (parts.length === 6 && verb === 'tasks' && task && taskVerb === 'retry') {
      return sendJson(res, 200, { retried: await retryTasks(s, name, task) });
    }
    throw new HttpError(404, 'not found');
  };

  const handler = ((req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((error: unknown) => {
      const e = classify(error instanceof UnknownContainer ? new HttpError(404, `no container named "${error.message}"`) : error);
      if (e.status === 503) onError(error);
      if (res.headersSent) return void res.end();
      const wantsHtml = (req.headers.accept ?? '').includes('text/html') && req.method === 'GET';
      if (wantsHtml) sendText(res, e.status, 'text/html; charset=utf-8', errorPage(e.status, e.message, basePath), e.headers);
      else sendJson(res, e.status, { error: e.message }, e.headers);
    });
  }) as DashboardHandler;
  handler.close = () => hub.close();
  return handler;
}

async function containerView(store: TaskStore, name: string) {
  try {
    return await readContainer(store, name);
  } catch (error) {
    if (error instanceof UnknownContainer) throw new HttpError(404, `no container named "${name}"`);
    throw error;
  }
}

/** The list's filters from the query string. @throws HttpError 400 when one is malformed */
function listQuery(query: URLSearchParams): { status?: ContainerStatus; namePrefix?: string; after?: ReturnType<typeof decodeCursor> } {
  const out: { status?: ContainerStatus; namePrefix?: string; after?: ReturnType<typeof decodeCursor> } = {};
  for (const key of query.keys()) {
    if (!['status', 'q', 'after'].includes(key)) throw new HttpError(400, `unknown parameter "${key}"`);
  }
  const status = query.get('status');
  if (status) {
    if (!STATUSES.has(status)) throw new HttpError(400, `"status" must be running, succeeded, failed or cancelled, got ${JSON.stringify(status)}`);
    out.status = status as ContainerStatus;
  }
  const q = query.get('q');
  if (q) {
    if (q.length > 200) throw new HttpError(400, '"q" is longer than 200 characters');
    out.namePrefix = q;
  }
  const after = query.get('after');
  if (after) {
    const cursor = decodeCursor(after);
    if (!cursor) throw new HttpError(400, '"after" is not a page cursor of this dashboard');
    out.after = cursor;
  }
  return out;
}

function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, 'malformed URL');
  }
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
