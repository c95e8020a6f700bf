import type { ResolvedTaskOptions } from '../../definition/options.js';
import type { ContainerRecord, TaskRecord } from '../types.js';
import type { ValueRules } from '../../definition/storable.js';
import { TaskStatusError } from '../../errors.js';
import { AppendBatcher } from './append-batch.js';
import { readGraph } from './graph-pages.js';
import { SlotBatcher } from './slot-batch.js';
import type { ContainerDoc, StoreModels, TaskDoc } from './models.js';
import { StoreOperations, type WriteOptions } from './operations.js';
import type { ResolvedStoreOptions } from './store-options.js';
import { assertServerStorable, serverValueRules } from './value-rules.js';

export type { WriteOptions } from './operations.js';

/**
 * What every part of the MongoDB store shares: the models, the resolved
 * options, and the incarnation each container was last seen with.
 */
export class StoreContext extends StoreOperations {
  /**
   * The incarnation of each container as this store last read or created it.
   * Writes go to it: a runner whose container was deleted and created again
   * elsewhere keeps writing to the old keys (invisible) until it reads again.
   */
  readonly pins = new Map<string, string>();
  /**
   * First free page number of each container incarnation's task directory
   * (key `JSON.stringify([container, incarnation])`), as this store last read
   * or wrote it: where its next page write starts.
   */
  readonly directoryEnds = new Map<string, number>();
  /** First free number of each container list (`all`, or a final status) as this store last read or wrote it (see listing.ts). */
  readonly listingEnds = new Map<string, number>();
  /** Read small containers by exact `_id`s (servers without indexes on other fields, FerretDB v1); see `loadSnapshot`. */
  keyedReads = false;
  /** How far the server's clock is ahead of `o.clock` (ms), measured at creation; null when unknown. */
  serverOffsetMs: number | null = null;
  /** Log appends, sent in groups (see {@link AppendBatcher}). */
  readonly appends = new AppendBatcher(this);
  /** Slot inserts and deletes, sent in groups (see {@link SlotBatcher}). */
  readonly slotWrites = new SlotBatcher(this);

  constructor(
    readonly m: StoreModels,
    o: ResolvedStoreOptions,
  ) {
    super(o);
  }

  /** The kinds of values this store's server refuses (measured once per client, when first needed). */
  valueRules(): Promise<ValueRules> {
    return serverValueRules(this.m.containers.db, this.o.operationTimeoutMs);
  }

  /**
   * Refuses a value this server cannot store faithfully, before it is written.
   * @throws UnstorableValueError naming the path of the bad value and the rule
   */
  assertStorable(field: 'input' | 'output' | 'checkpoint', task: string, value: unknown): Promise<void> {
    return assertServerStorable(() => this.valueRules(), field, task, value);
  }

  /** Now on the store's wall clock. */
  now(): Date {
    return new Date(this.o.clock.now());
  }

  /**
   * Like {@link write}, for a write of the container document `name`: under
   * its update gate, so that on servers whose updates are not atomic no two
   * processes read-modify-write it at once (see {@link UpdateGate}).
   */
  writeContainer<T>(operation: string, name: string, fn: (o: WriteOptions) => Promise<T>): Promise<T> {
    return this.writeGated(operation, `containers:${name}`, fn);
  }

  /**
   * Moves the container's revision on: runners that see it move read the
   * whole container again (see `ContainerHead.revision`). Not idempotent,
   * and need not be: a retried `$inc` only moves it further.
   */
  async bump(container: string): Promise<void> {
    await this.writeContainer('bumpRevision', container, (o) => this.m.containers.updateOne({ _id: container }, { $inc: { revision: 1 } }, o).exec());
  }

  /**
   * The raw container document (tombstoned or not), under the read deadline;
   * without its `definition` (null) unless `withDefinition`: the declared
   * graph of a large container weighs megabytes, and most reads need none.
   * With it, a graph kept in pages (see graph-pages.ts) is read into
   * `definition`; one kept in the document (containers made before pages) is
   * read with it.
   * @throws TaskStatusError `PTS_GRAPH_MISSING` when a page of a live container's graph is missing (damage, never a smaller graph)
   */
  async readContainerDoc(operation: string, name: string, withDefinition = true): Promise<ContainerDoc | null> {
    const projection = withDefinition ? {} : { definition: 0 };
    for (let round = 1; ; round++) {
      const doc = await this.read(operation, () => this.q(this.m.containers.findById(name, projection).lean<ContainerDoc>()).exec());
      if (!doc || !withDefinition) return doc && { ...doc, definition: null };
      // Containers made before graph pages existed hold their graph in `definition`.
      if (!doc.graph || doc.deletedAt) return doc;
      const definition = await readGraph(this, name, doc.incarnation ?? '', doc.graph);
      if (definition) return { ...doc, definition };
      // A page is gone: the container was deleted (and purged) since it was
      // read, and the next read shows what replaced it. Pages are written
      // before the document and deleted after its tombstone, so a page
      // missing under a live document is damage, reported, never a smaller graph.
      if (round >= 3) throw new TaskStatusError('PTS_GRAPH_MISSING', `Container "${name}": a page of its declared graph is missing from the database`);
    }
  }

  /** The incarnation writes to this container go to; null when it does not exist. */
  async incarnation(container: string): Promise<string | null> {
    const pinned = this.pins.get(container);
    if (pinned !== undefined) return pinned;
    const doc = await this.readContainerDoc('incarnation', container, false);
    if (!doc || doc.deletedAt) return null;
    this.pins.set(container, doc.incarnation ?? '');
    return doc.incarnation ?? '';
  }
}

export function toContainerRecord(doc: ContainerDoc): ContainerRecord {
  return {
    name: doc._id,
    status: doc.status,
    failFast: doc.failFast,
    definition: doc.definition ?? null,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
    finishedAt: doc.finishedAt ?? null,
    cancelRequestedAt: doc.cancelRequestedAt ?? null,
    incarnation: doc.incarnation ?? '',
    retry: doc.retry ?? null,
  };
}

export function toTaskRecord(doc: TaskDoc): TaskRecord {
  return {
    container: doc.container,
    name: doc.name,
    dependsOn: doc.dependsOn ?? [],
    handler: doc.handler,
    input: doc.input ?? null,
    options: doc.options as ResolvedTaskOptions,
    dynamic: doc.dynamic ?? false,
    addedBy: doc.addedBy ?? null,
    stagedBy: doc.stagedBy ?? null,
    order: doc.order,
    createdAt: doc.createdAt,
  };
}
