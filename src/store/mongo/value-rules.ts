import { randomBytes } from 'node:crypto';
import mongoose, { type Connection } from 'mongoose';
import { UnstorableValueError } from '../../errors.js';
import {
  findUnstorable,
  REFUSE_ALL_SENSITIVE,
  SERVER_SENSITIVE_KINDS,
  type ServerSensitiveKind,
  type ValueRules,
} from '../../definition/storable.js';

/**
 * Which BSON kinds a server refuses, measured once per client (a MongoClient)
 * and only when a value holding one of them is about to be written.
 *
 * FerretDB v1 closes the connection on NaN, MinKey, MaxKey, Code and
 * Decimal128 (every operation in flight on that connection fails with it),
 * and refuses ±Infinity and nested arrays per document with code 2. MongoDB
 * stores them all. Each kind is inserted once into a scratch collection
 * through its own short-lived client (one connection, no retries), so a
 * connection the server closes is never one the store uses, like the EPF
 * loader's Decimal128 probe (examples/epf/load/switch.ts).
 */
const measured = new WeakMap<object, Promise<ValueRules>>();

const { MinKey, MaxKey, Code, Decimal128 } = mongoose.mongo;
const SAMPLES: Record<ServerSensitiveKind, () => unknown> = {
  NaN: () => Number.NaN,
  Infinity: () => Number.POSITIVE_INFINITY,
  'nested array': () => [[1]],
  MinKey: () => new MinKey(),
  MaxKey: () => new MaxKey(),
  Code: () => new Code('return 1'),
  Decimal128: () => Decimal128.fromString('1.5'),
};

/**
 * The kinds the server behind `connection` refuses, each with its rule in
 * words. Measured once per client; a measurement that could not reach the
 * server is forgotten (measured again next time) and refuses nothing.
 * @param timeoutMs bound of each probe step, in ms
 */
export function serverValueRules(connection: Connection, timeoutMs: number): Promise<ValueRules> {
  const client = connection.getClient() as unknown as object;
  let rules = measured.get(client);
  if (!rules) {
    rules = measure(connection, timeoutMs);
    measured.set(client, rules);
    rules.catch(() => measured.delete(client));
  }
  return rules.catch(() => new Map());
}

async function measure(connection: Connection, timeoutMs: number): Promise<ValueRules> {
  const client = connection.getClient() as unknown as { s?: { url?: string } };
  const url = client.s?.url ?? (connection as unknown as { _connectionString?: string })._connectionString;
  const dbName = connection.db?.databaseName ?? connection.name;
  if (!url || !dbName) throw new Error('the connection has no connection string to probe with');
  const collection = `pts_value_probe_${randomBytes(4).toString('hex')}`;
  const found = await Promise.all(SERVER_SENSITIVE_KINDS.map(async (kind) => [kind, await probe(url, dbName, collection, kind, timeoutMs)] as const));
  await connection.db?.dropCollection(collection).catch(() => undefined);
  if (found.some(([, r]) => r === 'unreachable')) throw new Error('the server could not be probed');
  return new Map(found.filter((f): f is readonly [ServerSensitiveKind, string] => typeof f[1] === 'string' && f[1] !== 'unreachable'));
}

/** The server's rule for `kind` in words, null when it stores it, 'unreachable' when the probe could not tell. */
async function probe(url: string, dbName: string, collection: string, kind: ServerSensitiveKind, timeoutMs: number): Promise<string | null> {
  const probeClient = new mongoose.mongo.MongoClient(url, {
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
    socketTimeoutMS: timeoutMs,
    maxPoolSize: 1,
    retryWrites: false,
    retryReads: false,
  });
  try {
    try {
      await probeClient.db(dbName).command({ ping: 1 });
    } catch {
      return 'unreachable';
    }
    try {
      await probeClient.db(dbName).collection(collection).insertOne({ _id: kind, v: SAMPLES[kind]() } as never);
      return null;
    } catch (error) {
      const e = error as { code?: unknown; message?: string; errmsg?: string };
      const text = String(e.errmsg ?? e.message ?? error);
      if (/closed|ECONNRESET|EPIPE|socket/i.test(text)) return 'the server closes the connection when it receives one';
      const rule = /\(([^()]+)\)\s*$/.exec(text)?.[1] ?? text.slice(0, 200);
      return `the server refuses it (code ${String(e.code ?? 'unknown')}: ${rule})`;
    }
  } finally {
    await probeClient.close(true).catch(() => undefined);
  }
}

/**
 * Throws {@link UnstorableValueError} naming the path and the rule when
 * `value` cannot be stored faithfully on this server: by BSON itself, by
 * MongoDB's nesting limit counted as stored, or by a rule of the server
 * (measured only when the value holds a kind some server refuses).
 */
export async function assertServerStorable(
  rules: () => Promise<ValueRules>,
  field: 'input' | 'output' | 'checkpoint',
  task: string,
  value: unknown,
): Promise<void> {
  const any = findUnstorable(value, field, { rules: REFUSE_ALL_SENSITIVE });
  if (!any) return;
  const bad = any.kind === undefined ? any : findUnstorable(value, field, { rules: await rules() });
  if (bad) throw new UnstorableValueError(field, task, `${bad.path} ${bad.reason}`);
}
