/**
 * A small real HTTP server on 127.0.0.1 for download tests: serves in-memory
 * files with `Range`, `If-Range` and ETags, Basic auth, and faults (drop the
 * connection after N body bytes, trickle slowly, answer a status such as 503,
 * ignore `Range`). Every response is logged with the bytes really written to
 * the socket, so a test can prove which byte ranges were fetched.
 *
 * No vitest imports here, so child scripts can use it too.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RangeLogEntry {
  path: string;
  range?: string;
  ifRange?: string;
  status: number;
  /** First body byte offset of the response. */
  start: number;
  /** Body bytes handed to the socket. */
  sent: number;
  /** The connection was dropped on purpose. */
  dropped: boolean;
}

export interface RangeServerFaults {
  /** Per request, in order: destroy the socket after this many body bytes (undefined = no drop). */
  dropAfter?: (number | undefined)[];
  /** Per request, in order: answer this status with an empty body instead of the file. */
  statuses?: number[];
  /** Send the body in pieces of `bytes` every `intervalMs`. */
  trickle?: { bytes: number; intervalMs: number };
  /** Answer 200 with the whole file even to Range requests. */
  ignoreRange?: boolean;
  /** Do not send ETags. */
  noEtag?: boolean;
}

export interface RangeServer {
  baseUrl: string;
  url(name: string): string;
  /** Adds or replaces a file; its ETag is `"<name>-v<version>"` with a new version per call. */
  setFile(name: string, content: Buffer): void;
  faults: RangeServerFaults;
  log: RangeLogEntry[];
  /** Total body bytes sent for `name`. */
  sentFor(name: string): number;
  stop(): Promise<void>;
}

/** Starts the server on an ephemeral port; `auth` makes every request need Basic auth. */
export async function startRangeServer(opts: { auth?: { username: string; password: string } } = {}): Promise<RangeServer> {
  const files = new Map<string, { content: Buffer; etag: string }>();
  let version = 0;
  const log: RangeLogEntry[] = [];
  const faults: RangeServerFaults = {};
  const expectedAuth = opts.auth
    ? `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`
    : undefined;

  const server = http.createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').slice(1));
    const range = req.headers.range;
    const ifRange = req.headers['if-range'] as string | undefined;
    const entry: RangeLogEntry = { path: name, range, ifRange, status: 0, start: 0, sent: 0, dropped: false };
    log.push(entry);
    const finish = (status: number, headers: http.OutgoingHttpHeaders = {}) => {
      entry.status = status;
      res.writeHead(status, headers);
      res.end();
    };
    if (expectedAuth && req.headers.authorization !== expectedAuth) {
      return finish(401, { 'WWW-Authenticate': 'Basic realm="epf"' });
    }
    const forced = faults.statuses?.shift();
    if (forced !== undefined) return finish(forced, { 'Retry-After': '0' });
    const file = files.get(name);
    if (!file) return finish(404);
    const total = file.content.length;
    const headers: http.OutgoingHttpHeaders = { 'Accept-Ranges': 'bytes' };
    if (!faults.noEtag) headers.ETag = file.etag;

    let start = 0;
    let status = 200;
    const m = range ? /^bytes=(\d+)-$/.exec(range) : null;
    const validatorOk = ifRange === undefined || ifRange === file.etag;
    if (m && !faults.ignoreRange && validatorOk) {
      start = Number(m[1]);
      if (start >= total) return finish(416, { 'Content-Range': `bytes */${total}` });
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${total - 1}/${total}`;
    }
    headers['Content-Length'] = total - start;
    entry.status = status;
    entry.start = start;
    res.writeHead(status, headers);

    const dropAfter = faults.dropAfter?.shift();
    const piece = faults.trickle?.bytes ?? 64 * 1024;
    const interval = faults.trickle?.intervalMs ?? 0;
    let pos = start;
    let stopped = false;
    res.on('close', () => {
      stopped = true;
    });
    const pump = () => {
      while (!stopped) {
        if (pos >= total) return void res.end();
        let end = Math.min(pos + piece, total);
        if (dropAfter !== undefined) end = Math.min(end, start + dropAfter);
        if (end > pos) {
          const ok = res.write(file.content.subarray(pos, end));
          entry.sent += end - pos;
          pos = end;
          if (dropAfter !== undefined && entry.sent >= dropAfter) {
            entry.dropped = true;
            stopped = true;
            // let the written bytes leave, then cut the connection mid-body
            setTimeout(() => res.socket?.destroy(), 20);
            return;
          }
          if (interval > 0) return void setTimeout(pump, interval);
          if (!ok) return void res.once('drain', pump);
        }
      }
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;

  return {
    baseUrl,
    url: (name) => `${baseUrl}/${encodeURIComponent(name)}`,
    setFile(name, content) {
      files.set(name, { content, etag: `"${name}-v${++version}"` });
    },
    faults,
    log,
    sentFor: (name) => log.filter((e) => e.path === name).reduce((sum, e) => sum + e.sent, 0),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
