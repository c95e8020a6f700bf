/**
 * A file's ledger claim is held by its slot from the first step to publish,
 * and renewed between steps: a step that waits for a runner slot (here the
 * `cpu` group, busy with another task, for several claim leases) never loses
 * its file to another slot. The claim lease is shortened to 3 s
 * (`claimLeaseMs`), so several leases pass in seconds.
 */
import { expect, it } from 'vitest';
import { defineContainer, Ledger, Runner, type TaskContext } from '../src/index.js';
import { claimHeartbeatOf, claimItemOf, withFileClaim } from '../src/ingest/epf/file-claim.js';
import { silentReporter, type EpfEnv } from '../src/ingest/epf/env.js';
import type { PlannedFile } from '../src/ingest/epf/plan.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
const CLAIM_LEASE_MS = 3_000;

const file: PlannedFile = {
  id: 'full-itunes20261201-application',
  table: 'itunes/application',
  kind: 'full',
  url: 'https://feed.example/v5/itunes20261201/application.tbz',
  name: 'application.tbz',
  group: 'itunes',
  date: '20261201',
  md5: '0123456789abcdef0123456789abcdef',
  size: 1234,
};

it('a step waiting for a runner slot for several claim leases keeps its file: another slot finds it busy, and the next steps run on the same claim', async () => {
  const connection = db().connection;
  const ledger = await Ledger.create({ connection, name: 'epf' });
  const warnings: string[] = [];
  const env = { connection, ledger, claimLeaseMs: CLAIM_LEASE_MS, reporter: { ...silentReporter, warn: (m: string) => warnings.push(m) } } as unknown as EpfEnv;
  let freeCpu!: () => void;
  const cpuBusy = new Promise<void>((resolve) => (freeCpu = resolve));
  let downloaded!: () => void;
  const downloadDone = new Promise<void>((resolve) => (downloaded = resolve));
  const steps: string[] = [];
  const step = (name: string) => async (ctx: TaskContext) => {
    const publish = name === 'publish';
    const r = await withFileClaim(
      ctx,
      env,
      file,
      async () => {
        steps.push(name);
        if (publish) await ledger.record(claimItemOf(file), { container: ctx.container });
      },
      { release: publish },
    );
    if (name === 'download') downloaded();
    return r.status;
  };
  const slotA = 'epf-2026-12-01T10:00Z';
  const container = defineContainer(slotA, { failFast: false })
    // Holds the only cpu slot until the test frees it: extract waits for it.
    .task('other-extract', { group: 'cpu' }, () => cpuBusy)
    .task('download', step('download'))
    .task('extract', { dependsOn: ['download'], group: 'cpu' }, step('extract'))
    .task('import', { dependsOn: ['extract'] }, step('import'))
    .task('publish', { dependsOn: ['import'] }, step('publish'))
    .build();
  const runner = await Runner.create({ connection, container, concurrency: 4, groups: { cpu: 1 }, pollMs: 100 });
  const run = runner.run();

  await downloadDone;
  // Four claim leases with no step of the file running: extract waits for the cpu slot.
  await new Promise((r) => setTimeout(r, 4 * CLAIM_LEASE_MS));
  expect(steps).toEqual(['download']);
  const other = await ledger.claim(claimItemOf(file), { holder: 'epf-2026-12-01T11:00Z', leaseMs: CLAIM_LEASE_MS });
  expect(other).toEqual({ status: 'busy', holder: slotA });

  freeCpu();
  expect((await run).status).toBe('succeeded');
  expect(steps).toEqual(['download', 'extract', 'import', 'publish']);
  expect(warnings).toEqual([]); // never "slot … is ingesting it; this slot waits for it"
  // One claim generation: never taken over. Publish released it, and nothing is renewed any more.
  const claims = await connection.collection('pts_ledger_claims').find({ ledger: 'epf' }).toArray();
  expect(claims.map((c) => ({ generation: c.generation, holder: c.holder, released: c.released }))).toEqual([
    { generation: 0, holder: slotA, released: true },
  ]);
  expect(claimHeartbeatOf(env).size).toBe(0);
}, 120_000);
