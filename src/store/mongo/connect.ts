import type { Connection } from 'mongoose';
import { ServerUnreachableError } from '../../errors.js';

/** How long the store waits for a server by default, in ms (mongoose's own default is 30 s). */
export const DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 5000;

const CONNECTED = 1;

/**
 * Waits until `connection` is connected, at most `timeoutMs`: fails fast with
 * a {@link ServerUnreachableError} naming the host instead of waiting for
 * mongoose's 30 s server selection or its 10 s buffering timeout. It also
 * covers a connection nobody opened (e.g. `mongoose.connect()` was called on
 * another copy of mongoose): it waits for it to be opened, then says so.
 * Other connection errors (authentication, a bad URI) are passed through.
 */
export async function waitForServer(connection: Connection, timeoutMs: number): Promise<void> {
  if (connection.readyState === CONNECTED) return;
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let stopListening = (): void => undefined;
  const connected = (async () => {
    await connection.asPromise();
    if (connection.readyState === CONNECTED) return;
    await new Promise<void>((resolve) => {
      const done = () => resolve();
      connection.once('connected', done);
      stopListening = () => connection.off('connected', done);
    });
  })();
  connected.catch(() => undefined); // it may settle after the timeout
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const detail =
        connection.readyState === 0 && !connectionString(connection)
          ? 'the connection was never opened: call mongoose.connect() (on the mongoose instance this package uses) or pass a connection'
          : `no server answered (readyState ${connection.readyState}); raise serverSelectionTimeoutMs if it is just slow`;
      reject(new ServerUnreachableError(describeConnection(connection), timeoutMs, detail));
    }, timeoutMs);
  });
  try {
    await Promise.race([connected, timeout]);
  } catch (error) {
    const name = (error as { name?: unknown })?.name;
    if (typeof name === 'string' && /ServerSelectionError$/.test(name)) {
      const detail = String((error as Error).message).split('\n')[0] ?? '';
      throw new ServerUnreachableError(describeConnection(connection), Date.now() - started, detail, { cause: error });
    }
    throw error;
  } finally {
    clearTimeout(timer);
    stopListening();
  }
}

/** The hosts a connection points at, without credentials; a description when it has no URI yet. */
export function describeConnection(connection: Connection): string {
  const uri = connectionString(connection);
  if (!uri) return connection.host ? `${connection.host}:${connection.port}` : '(no URI: connection not opened)';
  return hostsOfUri(uri);
}

/** The host list of a MongoDB URI, without credentials, for messages. */
export function hostsOfUri(uri: string): string {
  const rest = uri.replace(/^mongodb(\+srv)?:\/\//, '');
  const end = rest.search(/[/?]/);
  const hosts = end < 0 ? rest : rest.slice(0, end);
  const at = hosts.lastIndexOf('@');
  return at < 0 ? hosts : hosts.slice(at + 1);
}

function connectionString(connection: Connection): string | undefined {
  const uri = (connection as unknown as { _connectionString?: unknown })._connectionString;
  return typeof uri === 'string' && uri.length > 0 ? uri : undefined;
}
