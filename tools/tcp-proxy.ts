/**
 * A small TCP proxy for fault tests: forwards 127.0.0.1:<port> to an upstream
 * server, and can be told to blackhole the link, as a network partition does:
 * bytes stop flowing in both directions but no connection is closed (no RST,
 * no FIN), so peers see silence, not an error. `heal()` delivers what was
 * held back, in order, as TCP would after a partition heals. New connections
 * made during a blackhole are accepted and held too.
 *
 *   const proxy = await startTcpProxy({ port: 27017 });
 *   const uri = `mongodb://127.0.0.1:${proxy.port}/db`;
 *   proxy.blackhole(); ...; proxy.heal(); await proxy.close();
 *
 * It can also rewrite replies (`proxy.rewriteReplies(fn)`), e.g. to add a
 * `writeConcernError` to the reply of an insert that did land, as a replica
 * set does when the write concern times out. Bytes are forwarded as whole
 * wire messages (see tools/wire-messages.ts).
 */
import net from 'node:net';
import { bodyOf, header, MessageFramer, withBody } from './wire-messages.js';

/**
 * Decides, for each command a client sends (its OP_MSG body), whether its
 * reply is rewritten: returns the function that rewrites the reply body, or
 * undefined to pass it unchanged.
 */
export type ReplyRewriter = (command: Record<string, unknown>) => ((reply: Record<string, unknown>) => Record<string, unknown>) | undefined;

/** Options of {@link startTcpProxy}. */
export interface TcpProxyOptions {
  /** Upstream port on `host`. */
  port: number;
  /** Upstream host. @defaultValue '127.0.0.1' */
  host?: string;
  /** Local port to listen on (127.0.0.1). @defaultValue 0: a free one */
  listenPort?: number;
}

/** A running proxy. */
export interface TcpProxy {
  /** The local port clients connect to. */
  port: number;
  /** Stops forwarding in both directions, holding the bytes; connections stay open. */
  blackhole(): void;
  /** Resumes forwarding and delivers the held bytes. */
  heal(): void;
  /** True while blackholed. */
  readonly blackholed: boolean;
  /** Connections accepted so far, and bytes held back by blackholes (both directions). */
  readonly stats: { connections: number; heldBytes: number };
  /** Rewrites the replies of the commands `rewriter` picks from now on; null stops rewriting. */
  rewriteReplies(rewriter: ReplyRewriter | null): void;
  /**
   * Holds back the replies of the commands `picker` picks from now on (a
   * slow server, for one kind of command), until {@link releaseHeld}; null
   * stops picking. The replies that follow on the same connection wait behind them.
   */
  holdReplies(picker: ((command: Record<string, unknown>) => boolean) | null): void;
  /** Replies held by {@link holdReplies} so far and not released. */
  readonly heldReplies: number;
  /** Delivers the held replies (and stops holding). */
  releaseHeld(): void;
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

interface Link {
  client: net.Socket;
  upstream: net.Socket;
  toUpstream: Buffer[];
  toClient: Buffer[];
  /** Replies held by `holdReplies`, with those that came after them on this connection. */
  heldReplies: Buffer[];
}

/**
 * Starts a proxy listening on 127.0.0.1.
 * @throws the listen error (e.g. EADDRINUSE for a taken `listenPort`).
 */
export async function startTcpProxy(opts: TcpProxyOptions): Promise<TcpProxy> {
  const host = opts.host ?? '127.0.0.1';
  const links = new Set<Link>();
  let holding = false;
  let rewriter: ReplyRewriter | null = null;
  let holdPicker: ((command: Record<string, unknown>) => boolean) | null = null;
  let heldCount = 0;
  const stats = { connections: 0, heldBytes: 0 };

  const flush = (link: Link) => {
    for (const b of link.toUpstream.splice(0)) if (!link.upstream.destroyed) link.upstream.write(b);
    for (const b of link.toClient.splice(0)) if (!link.client.destroyed) link.client.write(b);
  };

  const server = net.createServer((client) => {
    stats.connections++;
    const upstream = net.connect({ host, port: opts.port });
    const link: Link = { client, upstream, toUpstream: [], toClient: [], heldReplies: [] };
    links.add(link);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const up = new MessageFramer();
    const down = new MessageFramer();
    // Reply rewrites by the requestID of the command they answer.
    const pendingRewrites = new Map<number, (reply: Record<string, unknown>) => Record<string, unknown>>();
    /** requestIDs of the commands whose replies are held. */
    const pendingHolds = new Set<number>();
    client.on('data', (bytes: Buffer) => {
      for (const b of up.push(bytes)) {
        if (holdPicker) {
          const command = bodyOf(b);
          if (command && holdPicker(command)) pendingHolds.add(header(b).requestId);
        }
        if (rewriter) {
          const command = bodyOf(b);
          const rewrite = command ? rewriter(command) : undefined;
          if (rewrite) pendingRewrites.set(header(b).requestId, rewrite);
        }
        if (holding) {
          link.toUpstream.push(b);
          stats.heldBytes += b.length;
        } else upstream.write(b);
      }
    });
    upstream.on('data', (bytes: Buffer) => {
      for (let b of down.push(bytes)) {
        const rewrite = pendingRewrites.get(header(b).responseTo);
        if (rewrite) {
          pendingRewrites.delete(header(b).responseTo);
          const reply = bodyOf(b);
          if (reply) b = withBody(b, rewrite(reply));
        }
        if (pendingHolds.delete(header(b).responseTo)) {
          heldCount += 1;
          link.heldReplies.push(b);
        } else if (link.heldReplies.length > 0) link.heldReplies.push(b);
        else if (holding) {
          link.toClient.push(b);
          stats.heldBytes += b.length;
        } else client.write(b);
      }
    });
    // A close on one side is passed on only while forwarding; during a
    // blackhole it waits for the heal, like any other byte.
    const closeBoth = () => {
      const finish = () => {
        links.delete(link);
        client.destroy();
        upstream.destroy();
      };
      if (!holding) finish();
      else {
        const timer = setInterval(() => {
          if (!holding) {
            clearInterval(timer);
            flush(link);
            finish();
          }
        }, 50);
        timer.unref();
      }
    };
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    client.on('error', () => {});
    upstream.on('error', () => {});
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listenPort ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    blackhole() {
      holding = true;
    },
    heal() {
      holding = false;
      for (const link of links) flush(link);
    },
    get blackholed() {
      return holding;
    },
    rewriteReplies(r: ReplyRewriter | null) {
      rewriter = r;
    },
    holdReplies(picker) {
      holdPicker = picker;
    },
    get heldReplies() {
      return heldCount;
    },
    releaseHeld() {
      holdPicker = null;
      heldCount = 0;
      for (const link of links) {
        for (const b of link.heldReplies.splice(0)) {
          if (holding) link.toClient.push(b);
          else if (!link.client.destroyed) link.client.write(b);
        }
      }
    },
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        for (const link of links) {
          link.client.destroy();
          link.upstream.destroy();
        }
        links.clear();
        server.close(() => resolve());
      }),
  };
}
