/**
 * A TCP proxy under the test's control, between one client and the test
 * server: `blackhole()` keeps every connection open but stops forwarding
 * bytes both ways (a partition: writes get no reply, nothing is refused),
 * `restore()` forwards again (bytes held meanwhile are dropped, so
 * connections that were cut are closed and the client reconnects).
 *
 *   const proxy = await startTcpProxy(testMongoUri());
 *   mongoose.createConnection(proxy.uri(dbName))
 */
import net from 'node:net';

export interface TcpProxy {
  /** The server URI, through the proxy, with `dbName` and `directConnection`. */
  uri(dbName: string): string;
  blackhole(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(serverUri: string): Promise<TcpProxy> {
  const m = /^mongodb:\/\/([^/:]+):(\d+)/.exec(serverUri);
  if (!m) throw new Error(`cannot proxy ${serverUri}`);
  const [, host, port] = m;
  let cut = false;
  const pairs = new Set<{ client: net.Socket; server: net.Socket; cut: boolean }>();
  const proxy = net.createServer((client) => {
    const server = net.connect(Number(port), host);
    const pair = { client, server, cut };
    pairs.add(pair);
    client.on('data', (b) => {
      if (!pair.cut) server.write(b);
    });
    server.on('data', (b) => {
      if (!pair.cut) client.write(b);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on('error', end).on('close', end);
    server.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const listenPort = (proxy.address() as net.AddressInfo).port;
  return {
    uri: (dbName) => `mongodb://127.0.0.1:${listenPort}/${dbName}?directConnection=true`,
    blackhole() {
      cut = true;
      for (const p of pairs) p.cut = true;
    },
    restore() {
      cut = false;
      // A connection that lost bytes is out of sync: close it, the driver reconnects.
      for (const p of pairs) if (p.cut) {
        p.client.destroy();
        p.server.destroy();
      }
    },
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.server.destroy();
      }
      await new Promise<void>((r) => proxy.close(() => r()));
    },
  };
}
