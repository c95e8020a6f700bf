import type { IncomingMessage, ServerResponse } from 'node:http';
import { classify } from './http.js';

/** How often a watched view is read again while someone watches it (ms). */
export const LIVE_POLL_MS = 1000;
/** A comment line every this many ms keeps proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;
/** Most distinct views watched at once by one dashboard (more streams are refused with 503). */
const MAX_WATCHED_VIEWS = 200;

interface Watch {
  read: () => Promise<unknown>;
  clients: Set<ServerResponse>;
  last: string | null;
  timer: NodeJS.Timeout | null;
  reading: boolean;
}

/**
 * Server-Sent Events for the dashboard's views. Every client of one view
 * shares one reader: the view is read every {@link LIVE_POLL_MS} while at
 * least one client watches it, and pushed (`event: update`) only when it
 * changed, so a write shows within about one poll plus one read, and no
 * browser polls anything. A failed read pushes `event: outage` once per
 * outage; the next good read pushes the view again (the page's banner goes).
 * A stream ends when its client goes, and the reader stops with the last client.
 */
export class LiveHub {
  private readonly watches = new Map<string, Watch>();
  private closed = false;

  constructor(private readonly onError: (error: unknown) => void) {}

  /** Starts a stream of `key`'s view (read by `read`) to this client. */
  subscribe(key: string, read: () => Promise<unknown>, req: IncomingMessage, res: ServerResponse): void {
    let watch = this.watches.get(key);
    if (!watch) {
      if (this.watches.size >= MAX_WATCHED_VIEWS || this.closed) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('too many live views');
        return;
      }
      watch = { read, clients: new Set(), last: null, timer: null, reading: false };
      this.watches.set(key, watch);
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    if (watch.last !== null) res.write(`event: update\ndata: ${watch.last}\n\n`);
    watch.clients.add(res);
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    const w = watch;
    const drop = (): void => {
      clearInterval(keepalive);
      w.clients.delete(res);
      if (w.clients.size === 0) this.stop(key, w);
    };
    req.on('close', drop);
    res.on('close', drop);
    if (!w.timer) this.tick(key, w);
  }

  /** Ends every stream and reader (server shutdown). */
  close(): void {
    this.closed = true;
    for (const [key, w] of this.watches) {
      for (const res of w.clients) res.end();
      this.stop(key, w);
    }
  }

  private stop(key: string, w: Watch): void {
    if (w.timer) clearTimeout(w.timer);
    w.timer = null;
    if (this.watches.get(key) === w) this.watches.delete(key);
  }

  private tick(key: string, w: Watch): void {
    if (w.reading || this.watches.get(key) !== w) return;
    w.reading = true;
    void w
      .read()
      .then(
        (view) => {
          const text = JSON.stringify(view);
          if (text !== w.last) {
            w.last = text;
            for (const res of w.clients) res.write(`event: update\ndata: ${text}\n\n`);
          }
        },
        (error: unknown) => {
          this.onError(error);
          const e = classify(error);
          if (w.last !== 'outage') {
            w.last = 'outage';
            const data = JSON.stringify({ status: e.status, message: e.message });
            for (const res of w.clients) res.write(`event: outage\ndata: ${data}\n\n`);
          }
        },
      )
      .finally(() => {
        w.reading = false;
        if (this.watches.get(key) === w && w.clients.size > 0) w.timer = setTimeout(() => this.tick(key, w), LIVE_POLL_MS);
      });
  }
}
