/**
 * A container's declared graph (task names and dependencies) is stored in
 * pages of its own, read and written by exact `_id`, not inside the
 * container document: a graph over MongoDB's 16 MiB document limit is
 * created, resumed and run; a create SIGKILLed between its pages never
 * leaves a container that reads as declaring fewer tasks; a container
 * written by an earlier version (graph inside its document) still loads.
 * Issue 13, Deliver 3. On the real test server, with real child processes.
 */
import { BSON } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { DefinitionConflictError, defineContainer, MongoStore, NonRetryableError, Runner, type ContainerBuilder } from '../src/index.js';
import { spawnTsChild } from './support/child.js';
import { commandCounting } from './support/command-count.js';
import { databasePerFile } from './support/database.js';
import { fanContainer, padded } from './fixtures/graph-containers.js';

const db = databasePerFile();
const fast = { pollMs: 50, checkpointIntervalMs: 0 } as const;
const commands = commandCounting(db);

const ROOTS = 300;
const DEPENDENTS = 300;

/**
 * 300 roots with 200-character names, and 300 tasks each depending on every
 * root: 600 tasks whose graph weighs about 19 MB of BSON (each dependent's
 * list about 63 kB). The first root fails for good, so the dependents are
 * skipped: a whole run that stays cheap (a dependent that ran would read
 * 300 outputs). `without` leaves a dependent out.
 */
function wideContainer(runs: string[], without?: string): ContainerBuilder<any> {
  let def = defineContainer('wide', { failFast: false }) as ContainerBuilder<any>;
  const roots = Array.from({ length: ROOTS }, (_, i) => padded(`root-${i}-`));
  for (const [i, r] of roots.entries()) {
    def = def.task(r, { retries: 0 }, async () => {
      runs.push(r);
      if (i === 0) throw new NonRetryableError('the first root fails');
    });
  }
  for (let i = 0; i < DEPENDENTS; i++) {
    const name = `dependent-${i}`;
    if (name !== without) def = def.task(name, { dependsOn: roots }, async () => void runs.push(name));
  }
  return def;
}

describe('the declared graph in pages', () => {
  it('a container whose declared graph passes 16 MiB is created, resumed and run, with every task and dependency there', async () => {
    const runs: string[] = [];
    const definition = wideContainer(runs).build();
    const graph = definition.tasks.map((t) => ({ name: t.name, dependsOn: t.dependsOn }));
    // What one container document would have had to hold.
    expect(BSON.calculateObjectSize({ definition: graph })).toBeGreaterThan(16 * 1024 * 1024);

    const store = await MongoStore.create(commands.connection());
    // Created, then left before anything ran (a runner that stopped at once).
    await Runner.create({ store, container: wideContainer(runs), ...fast });
    const created = (await store.loadSnapshot('wide'))!;
    expect(created.tasks).toHaveLength(ROOTS + DEPENDENTS);
    expect(created.container.status).toBe('running');
    expect(created.container.definition).toEqual(graph);
    expect((await db().connection.collection('pts_graph').countDocuments({ container: 'wide' })) > 1).toBe(true);

    // A start with the same graph does not read the graph's pages (its fingerprint is stored).
    const { result: runner, commands: sent } = await commands.count(() => Runner.create({ store, container: wideContainer(runs), ...fast }));
    expect(sent.get('find pts_graph') ?? 0).toBe(0);
    expect((await runner.run()).status).toBe('failed');
    expect(runs).toHaveLength(ROOTS);
    expect(new Set(runs).size).toBe(ROOTS);
    const ran = (await store.loadSnapshot('wide', { outputs: false }))!;
    expect(ran.tasks).toHaveLength(ROOTS + DEPENDENTS);
    const statuses = new Map<string, number>();
    for (const t of ran.tasks) statuses.set(t.state.status, (statuses.get(t.state.status) ?? 0) + 1);
    expect(Object.fromEntries(statuses)).toEqual({ failed: 1, succeeded: ROOTS - 1, skipped: DEPENDENTS });

    // A changed graph is compared with the stored one, read from its pages.
    const changed = await Runner.create({ store, container: wideContainer([], 'dependent-299'), ...fast }).catch((e: unknown) => e);
    expect(changed).toBeInstanceOf(DefinitionConflictError);
    expect((changed as DefinitionConflictError).differences).toEqual(['task "dependent-299" is in the persisted run but no longer declared']);
  }, 180_000);

  it('a create SIGKILLed between two pages of its graph leaves no container; the next create makes it whole', async () => {
    // Four pages (see GRAPH_PAGE_BYTES and fanContainer).
    const tasks = 1_000;
    const name = 'cut-graph';
    const cut = spawnTsChild('test/fixtures/graph-create-child.ts', [], {
      MONGODB_URI: db().uriWithDb,
      NAME: name,
      TASKS: String(tasks),
      CUT_AFTER_WRITES: '2',
    });
    expect((await cut.waitForExit(120_000)).signal).toBe('SIGKILL');
    const raw = db().connection;
    expect(await raw.collection('pts_graph').countDocuments({ container: name })).toBe(2);
    expect(await raw.collection('pts_containers').countDocuments({ _id: name as never })).toBe(0);
    const store = await MongoStore.create(commands.connection());
    expect(await store.loadSnapshot(name)).toBeNull();

    // Cut again right after the container document: it declares every task and reads as running.
    const pages = await raw.collection('pts_graph').countDocuments({ container: name });
    const again = spawnTsChild('test/fixtures/graph-create-child.ts', [], {
      MONGODB_URI: db().uriWithDb,
      NAME: name,
      TASKS: String(tasks),
      // Its pages, the listing entry, the container document.
      CUT_AFTER_WRITES: String(4 + 2),
    });
    expect((await again.waitForExit(120_000)).signal).toBe('SIGKILL');
    expect((await raw.collection('pts_graph').countDocuments({ container: name })) - pages).toBe(4);
    const half = (await store.loadSnapshot(name))!;
    expect(half.container.definition).toHaveLength(tasks);
    expect(half.tasks.length).toBeLessThan(tasks);
    expect(half.container.status).toBe('running');

    // A resume adds the missing tasks and runs every one.
    const runner = await Runner.create({ store, container: fanContainer(name, tasks), ...fast, concurrency: 32 });
    expect((await runner.run()).status).toBe('succeeded');
    const done = (await store.loadSnapshot(name, { outputs: false }))!;
    expect(done.tasks.map((t) => t.record.name)).toEqual(done.container.definition!.map((d) => d.name));
    expect(done.tasks).toHaveLength(tasks);
    expect(done.tasks.every((t) => t.state.status === 'succeeded')).toBe(true);
  }, 300_000);

  it('a runner reads its declared graph once: its full reads after the first read no graph page, nor the graph inside a document made before pages', async () => {
    const store = await MongoStore.create(commands.connection());
    const raw = db().connection;
    // Replies to finds of container documents that carried a declared graph, and full reads of the log (by filter, not `_id`).
    let graphsInReplies = 0;
    let fullReads = 0;
    let watching = false;
    commands.connection().getClient().on('commandSucceeded', (e) => {
      if (!watching || e.commandName !== 'find') return;
      const docs = ((e.reply as { cursor?: { firstBatch?: Array<Record<string, unknown>> } }).cursor?.firstBatch ?? []) as Array<Record<string, unknown>>;
      for (const d of docs) if (Array.isArray(d.definition)) graphsInReplies += 1;
    });
    commands.connection().getClient().on('commandStarted', (e) => {
      const filter = (e.command.filter ?? {}) as Record<string, unknown>;
      if (watching && e.commandName === 'find' && e.command.find === 'pts_transitions' && !('_id' in filter)) fullReads += 1;
    });
    for (const layout of ['pages', 'document'] as const) {
      const name = `reread-${layout}`;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const runs: string[] = [];
      // More tasks than a read by `_id` takes (64): a full read is a find by filter.
      const define = () => {
        let def = defineContainer(name) as ContainerBuilder<any>;
        for (let i = 0; i < 100; i++) {
          def = def.task(`t${i}`, async ({ task }) => {
            runs.push(task);
            if (task === 't0') await gate;
          });
        }
        return def;
      };
      await Runner.create({ store, container: define(), ...fast });
      if (layout === 'document') {
        // What an earlier version wrote: the graph inside the container document, no pages.
        const graph = define().build().tasks.map((t) => ({ name: t.name, dependsOn: [...t.dependsOn] }));
        await raw.collection('pts_graph').deleteMany({ container: name });
        await raw.collection('pts_containers').updateOne({ _id: name as never }, { $set: { definition: graph, applied: null }, $unset: { graph: '' } });
      }
      const runner = await Runner.create({ store, container: define(), ...fast, concurrency: 1 });
      const { result, commands: sent } = await commands.count(async () => {
        [graphsInReplies, fullReads, watching] = [0, 0, true];
        const running = runner.run();
        while (runs.length === 0) await new Promise((r) => setTimeout(r, 10));
        // A record change moves the revision on: the runner reads everything again.
        expect(await store.updateTaskRecord(name, 't99', { input: 'changed' })).toBe(true);
        const deadline = Date.now() + 60_000;
        while (fullReads === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        release();
        return running;
      });
      watching = false;
      expect(result.status).toBe('succeeded');
      expect(fullReads, `${layout}: full reads after the first`).toBeGreaterThan(0);
      expect(sent.get('find pts_graph') ?? 0, `${layout}: graph pages read`).toBe(0);
      expect(graphsInReplies, `${layout}: container documents read with their graph`).toBe(0);
      expect(new Set(runs).size).toBe(100);
    }
  }, 120_000);

  it('a container written with its graph inside its document (before pages) loads, resumes and is compared', async () => {
    const store = await MongoStore.create(commands.connection());
    const runs: string[] = [];
    const define = (extra?: string) => {
      let def = defineContainer('before-pages')
        .task('a', async () => void runs.push('a'))
        .task('b', { dependsOn: ['a'] }, async () => void runs.push('b')) as ContainerBuilder<any>;
      if (extra) def = def.task(extra, { dependsOn: ['b'] }, async () => void runs.push(extra));
      return def;
    };
    // What an earlier version left: the graph (naming a task `c` it had not
    // inserted yet when it died) inside the container document, no pages.
    await Runner.create({ store, container: define(), ...fast });
    const raw = db().connection;
    await raw.collection('pts_graph').deleteMany({ container: 'before-pages' });
    const old = [{ name: 'a', dependsOn: [] }, { name: 'b', dependsOn: ['a'] }, { name: 'c', dependsOn: ['b'] }];
    await raw.collection('pts_containers').updateOne({ _id: 'before-pages' as never }, { $set: { definition: old, applied: null }, $unset: { graph: '' } });

    const read = (await store.loadSnapshot('before-pages'))!;
    expect(read.container.definition).toEqual(old);
    // `c` is declared and missing: never finished.
    expect(read.container.status).toBe('running');
    const changed = await Runner.create({ store, container: define(), ...fast }).catch((e: unknown) => e);
    expect(changed).toBeInstanceOf(DefinitionConflictError);
    expect((changed as DefinitionConflictError).differences).toEqual(['task "c" is in the persisted run but no longer declared']);

    const runner = await Runner.create({ store, container: define('c'), ...fast });
    expect((await runner.run()).status).toBe('succeeded');
    expect(runs).toEqual(['a', 'b', 'c']);
  }, 60_000);
});
