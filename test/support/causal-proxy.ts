/**
 * A connection to the test database through tools/tcp-proxy.ts, for tests of
 * a store's causal session: FerretDB and standalone servers return no
 * operation times, so the proxy injects one into the replies of picked
 * commands, as a replica set would send it, and the commands the driver
 * then sends are observed (with how many commands of one driver session are
 * in flight at once).
 */
import mongoose, { type Connection } from 'mongoose';
import { expect } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../../tools/tcp-proxy.js';
import { uriWithDb, type TestDatabase } from './database.js';

type Timestamp = InstanceType<typeof mongoose.mongo.Timestamp>;

/** A command the driver started: its name and body. */
export interface StartedCommand {
  name: string;
  command: Record<string, unknown>;
}

/** The observed connection; see the module comment. */
export interface CausalProxy {
  conn: Connection;
  /** Commands started since the last {@link reset}. */
  readonly started: StartedCommand[];
  /** Most commands of one driver session in flight at once since the last {@link reset}. */
  readonly maxInFlight: number;
  /** Causally consistent driver sessions started explicitly since the last {@link reset} (the driver's implicit ones not counted). */
  readonly causalSessions: number;
  /** Forgets the commands seen and the in-flight maximum. */
  reset(): void;
  /** Runs `fn` while replies to the commands `picks` picks carry `operationTime`. */
  withOperationTime<T>(picks: (command: Record<string, unknown>) => boolean, operationTime: Timestamp, fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Opens a connection to `db` through a proxy that can inject operation times. */
export async function openCausalProxy(db: TestDatabase): Promise<CausalProxy> {
  const server = new URL(db.uri);
  const proxy: TcpProxy = await startTcpProxy({ port: Number(server.port), host: server.hostname });
  const uri = uriWithDb(`mongodb://127.0.0.1:${proxy.port}/`, db.dbName);
  const conn = await mongoose.createConnection(`${uri}${uri.includes('?') ? '&' : '?'}directConnection=true`, { monitorCommands: true }).asPromise();
  const started: StartedCommand[] = [];
  const byRequest = new Map<number, string>();
  const inFlight = new Map<string, number>();
  let maxInFlight = 0;
  const client = conn.getClient();
  client.on('commandStarted', (e) => {
    started.push({ name: e.commandName, command: e.command as Record<string, unknown> });
    const lsid = (e.command as { lsid?: { id?: { toString(f: string): string } } }).lsid?.id?.toString('hex');
    if (!lsid) return;
    byRequest.set(e.requestId, lsid);
    const n = (inFlight.get(lsid) ?? 0) + 1;
    inFlight.set(lsid, n);
    maxInFlight = Math.max(maxInFlight, n);
  });
  const settled = (e: { requestId: number }) => {
    const lsid = byRequest.get(e.requestId);
    if (lsid) inFlight.set(lsid, inFlight.get(lsid)! - 1);
  };
  client.on('commandSucceeded', settled);
  client.on('commandFailed', settled);
  let causalSessions = 0;
  const startSession = client.startSession.bind(client);
  client.startSession = (options) => {
    if (options?.causalConsistency) causalSessions++;
    return startSession(options);
  };
  return {
    conn,
    started,
    get maxInFlight() {
      return maxInFlight;
    },
    get causalSessions() {
      return causalSessions;
    },
    reset() {
      started.length = 0;
      maxInFlight = 0;
      causalSessions = 0;
    },
    async withOperationTime(picks, operationTime, fn) {
      proxy.rewriteReplies((command) => (picks(command) ? (reply) => ({ ...reply, operationTime }) : undefined));
      try {
        return await fn();
      } finally {
        proxy.rewriteReplies(null);
      }
    },
    async close() {
      await conn.close();
      await proxy.close();
    },
  };
}

/**
 * Asserts that the reads among `commands` (find, aggregate, count) are
 * there and each carries `operationTime` as `afterClusterTime`, with the
 * read concern level `level`.
 */
export function expectReadsAfter(commands: readonly StartedCommand[], operationTime: Timestamp, level = 'majority'): void {
  const reads = commands.filter((c) => c.name === 'find' || c.name === 'aggregate' || c.name === 'count');
  expect(reads.length).toBeGreaterThan(0);
  for (const r of reads) {
    const rc = r.command.readConcern as { level?: string; afterClusterTime?: Timestamp } | undefined;
    expect({ command: r.name, level: rc?.level, after: rc?.afterClusterTime?.equals(operationTime) }).toEqual({ command: r.name, level, after: true });
  }
}
