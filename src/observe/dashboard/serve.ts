import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDashboard, type DashboardHandler, type DashboardOptions } from './index.js';

/** Hosts that only this machine can reach. */
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** True when `host` is reachable from this machine only. */
export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\./.test(host);
}

/** A running dashboard server. */
export interface DashboardServer {
  /** `http://host:port/basePath/` */
  url: string;
  server: Server;
  handler: DashboardHandler;
  /** Ends live streams, stops accepting connections and waits for open requests (at most `graceMs`, default 5000 ms). */
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts an HTTP server for the dashboard on `host:port` (port 0: any free
 * port). Without `auth`, only a loopback host is allowed: the dashboard's
 * actions change containers, and its pages show inputs, errors and
 * checkpoints, so it must not be reachable from other machines unprotected.
 * @throws Error when `host` is not a loopback address and `auth` is not set
 */
export async function serveDashboard(options: DashboardOptions & { host?: string; port?: number }): Promise<DashboardServer> {
  const host = options.host ?? '127.0.0.1';
  if (!options.auth && !isLoopback(host)) {
    throw new Error(`refusing to listen on ${host} without authentication: set auth (pts dashboard --basic-auth user:pass) or listen on 127.0.0.1`);
  }
  const handler = createDashboard(options);
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}${options.basePath ?? ''}/`,
    server,
    handler,
    close: async (graceMs = 5000) => {
      handler.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}
