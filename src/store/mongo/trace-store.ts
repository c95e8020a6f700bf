import { Schema, type Connection, type Model } from 'mongoose';
import type { AttemptTraceKey } from '../types.js';
import type { StoreContext } from './context.js';

/** One attempt's span context: `_id` is the attempt's key, read and written by exact `_id` only. */
interface TraceDoc {
  _id: string;
  traceparent: string;
  container: string;
  at: Date;
}

const traceSchema = new Schema<TraceDoc>(
  { _id: String, traceparent: { type: String, required: true }, container: { type: String, required: true }, at: { type: Date, required: true } },
  { versionKey: false, autoIndex: false, autoCreate: false, strict: true },
);

/** The traces model of a store (`<prefix>_traces`), bound on first use. */
export function traceModel(connection: Connection, prefix: string): Model<TraceDoc> {
  const name = `${prefix}:traces`;
  return (connection.models[name] as Model<TraceDoc> | undefined) ?? connection.model<TraceDoc>(name, traceSchema, `${prefix}_traces`);
}

const traceKey = (k: AttemptTraceKey): string => JSON.stringify([k.container, k.incarnation, k.task, k.attempt]);

/** Stores an attempt's `traceparent` (an upsert by `_id`: a repeat writes the same). */
export async function saveTrace(ctx: StoreContext, model: Model<TraceDoc>, key: AttemptTraceKey, traceparent: string): Promise<void> {
  await ctx.write('saveTrace', (o) =>
    model.updateOne({ _id: traceKey(key) }, { $set: { traceparent, container: key.container, at: ctx.now() } }, { ...o, upsert: true }).exec(),
  );
}

/** The `traceparent` stored for an attempt, or null. */
export async function readTrace(ctx: StoreContext, model: Model<TraceDoc>, key: AttemptTraceKey): Promise<string | null> {
  const doc = await ctx.read('readTrace', () => ctx.q(model.findById(traceKey(key)).lean<TraceDoc>()).exec());
  return doc?.traceparent ?? null;
}
