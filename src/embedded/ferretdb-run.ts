/**
 * Runs the FerretDB binary built by ./ferretdb-build.ts: on a given or free
 * port, with data in a given folder (kept) or in a temporary one (removed on
 * stop). A server on a temporary folder dies with this process, even on
 * SIGKILL, because it exits when its stdin pipe closes. A server shared on a
 * data folder (`clientsDir`) runs detached and exits by itself once no live
 * process is registered in `clientsDir` (see server.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ensureFerretDbBinary, FERRETDB_VERSION } from './ferretdb-build.js';
import {
  canConnect,
  EmbeddedServerError,
  errorMessage,
  getFreePort,
  ping,
  PREFIX,
  sleep,
} from './shared.js';
import type { EmbeddedMongo } from './types.js';

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

/** Options of {@link startFerretDb}. */
export interface FerretDbOptions {
  /** Data folder (kept); undefined: a temporary folder removed by `stop()`. */
  dataDir: string | undefined;
  /** TCP port on 127.0.0.1; undefined: a free one. */
  port: number | undefined;
  log: (line: string) => void;
  /**
   * Share the server: it outlives this process and exits once no process id
   * named by a file in this folder is alive. Its output goes to
   * `ferretdb.log` in the data folder.
   */
  clientsDir?: string;
}

/** What {@link startFerretDb} returns: the server, and the id of its process. */
export type StartedFerretDb = EmbeddedMongo & { serverPid: number };

/**
 * Builds FerretDB if needed, starts it and waits until it answers a ping.
 * @throws EmbeddedServerError when Go is missing, the port is taken, or the server dies or stays silent for 30 s.
 */
export async function startFerretDb(o: FerretDbOptions): Promise<StartedFerretDb> {
  const bin = await ensureFerretDbBinary({ log: o.log });
  const temporary = o.dataDir === undefined;
  const dir = o.dataDir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'pts-ferretdb-')));
  await fsp.mkdir(dir, { recursive: true });
  try {
    if (o.port !== undefined) {
      if (await canConnect(o.port)) {
        throw new EmbeddedServerError(`${PREFIX} port ${o.port} on 127.0.0.1 is already in use; choose another port`);
      }
      return await launch(bin, o.port, dir, temporary, o.log, o.clientsDir);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await launch(bin, await getFreePort(), dir, temporary, o.log, o.clientsDir);
      } catch (err) {
        if (attempt < 3 && /address already in use/i.test(errorMessage(err))) continue;
        throw err;
      }
    }
  } catch (err) {
    if (temporary) await fsp.rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function launch(
  bin: string,
  port: number,
  dir: string,
  temporary: boolean,
  log: (line: string) => void,
  clientsDir: string | undefined,
): Promise<StartedFerretDb> {
  const logLevel = process.env.PTS_FERRETDB_LOG_LEVEL || 'error';
  const args = ['-listen', `127.0.0.1:${port}`, '-dir', dir, '-log-level', logLevel];
  if (temporary) args.push('-remove-dir-on-exit');
  let child: ChildProcess;
  if (clientsDir) {
    // Shared: detached, its output in a file (a pipe to this process would
    // break when it exits, and a Go server writing to a broken pipe dies).
    const out = fs.openSync(path.join(dir, 'ferretdb.log'), 'a');
    child = spawn(bin, [...args, '-clients-dir', clientsDir], { stdio: ['ignore', out, out], detached: true });
    fs.closeSync(out);
  } else {
    // stdin stays open: when this process dies (even by SIGKILL), the pipe
    // closes and the server exits by itself.
    child = spawn(bin, [...args, '-exit-on-stdin-eof'], { stdio: ['pipe', 'pipe', 'pipe'] });
  }

  let tail = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    });
    child.once('error', (err) => {
      spawnError = err;
      if (child.pid === undefined) {
        exit = { code: null, signal: null };
        resolve();
      }
    });
  });
  child.stdin?.on('error', () => {}); // EPIPE if the server is gone; nothing to do
  let pending = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4000);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    tail = (tail + text).slice(-4000);
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) log(`[ferretdb] ${line}`);
  });

  // Do not keep the event loop alive just for the server; the exit hook and
  // the stdin pipe take care of it when this process goes away.
  child.unref();
  for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as net.Socket | null)?.unref?.();

  const onExit = () => {
    if (clientsDir) return; // shared: it exits once its last client is gone
    try {
      child.kill(temporary ? 'SIGKILL' : 'SIGTERM');
    } catch {
      // already gone
    }
    if (temporary) {
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  };
  process.on('exit', onExit);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      process.off('exit', onExit);
      if (!exit && !clientsDir) {
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const graceful = await Promise.race([
          exited.then(() => true),
          new Promise<boolean>((r) => {
            timer = setTimeout(() => r(false), STOP_GRACE_MS);
          }),
        ]);
        clearTimeout(timer);
        if (!graceful) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      child.stdin?.destroy();
      if (temporary) await fsp.rm(dir, { recursive: true, force: true });
    })());

  const uri = `mongodb://127.0.0.1:${port}/`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError = '';
  try {
    for (;;) {
      if (exit) {
        const how = spawnError ? spawnError.message : exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
        throw new EmbeddedServerError(
          `${PREFIX} FerretDB (${bin}) died during startup (${how}). Output:\n${tail.trim() || '(none)'}`,
        );
      }
      if (Date.now() > deadline) {
        throw new EmbeddedServerError(
          `${PREFIX} FerretDB did not become ready on 127.0.0.1:${port} within ${READY_TIMEOUT_MS / 1000}s` +
            `${lastError ? ` (last error: ${lastError})` : ''}. Output:\n${tail.trim() || '(none)'}`,
        );
      }
      if (await canConnect(port)) {
        try {
          await ping(uri);
          break;
        } catch (err) {
          lastError = errorMessage(err);
        }
      }
      await Promise.race([exited, sleep(100)]);
    }
  } catch (err) {
    if (clientsDir && !exit) child.kill('SIGKILL'); // never became ready: nobody shares it
    await stop();
    throw err;
  }

  log(`${PREFIX} FerretDB ${FERRETDB_VERSION} on ${uri} (${temporary ? 'temporary data' : `data in ${dir}`})`);
  return { uri, kind: 'ferretdb', dataDir: temporary ? undefined : dir, stop, serverPid: child.pid! };
}
