/**
 * A dedicated FerretDB for the database-fault scenarios: its own process on a
 * data folder, whose pid the test can SIGSTOP, SIGCONT and SIGKILL, and which
 * can be started again on the same data and port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import mongoose from 'mongoose';
import { ensureFerretDbBinary, getFreePort } from '../../../tools/mongo-server.js';

/** A FerretDB process under the test's control. */
export interface DedicatedFerretDb {
  uri: string;
  port: number;
  dataDir: string;
  /** The current server process's pid. */
  readonly pid: number;
  signal(sig: NodeJS.Signals): void;
  /** SIGKILLs the server and waits for its exit. */
  kill(): Promise<void>;
  /** Starts the server again on the same data folder and port; resolves once it answers. */
  restart(): Promise<void>;
  /** Stops the server for good. */
  stop(): Promise<void>;
}

async function waitReady(uri: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new mongoose.mongo.MongoClient(uri, { serverSelectionTimeoutMS: 1000, directConnection: true });
    try {
      await client.connect();
      await client.db('admin').command({ ping: 1 });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`FerretDB on ${uri} not ready: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await client.close().catch(() => {});
    }
  }
}

/** Starts FerretDB on `dataDir` (built or cached by the package's build step). */
export async function startDedicatedFerretDb(dataDir: string): Promise<DedicatedFerretDb> {
  const bin = await ensureFerretDbBinary({ log: (l) => process.stderr.write(`${l}\n`) });
  const port = await getFreePort();
  const uri = `mongodb://127.0.0.1:${port}/`;
  let child: ChildProcess;
  let exited: Promise<void>;
  const launch = async () => {
    // stdin stays open: if the test process dies, the server exits with it.
    child = spawn(bin, ['-listen', `127.0.0.1:${port}`, '-dir', dataDir, '-log-level', 'error', '-exit-on-stdin-eof'], {
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    child.stdin?.on('error', () => {});
    exited = new Promise((resolve) => child.once('exit', () => resolve()));
    await waitReady(uri);
  };
  await launch();
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
    await exited;
  };
  return {
    uri,
    port,
    dataDir,
    get pid() {
      return child.pid!;
    },
    signal: (sig) => {
      child.kill(sig);
    },
    kill,
    restart: launch,
    stop: kill,
  };
}
