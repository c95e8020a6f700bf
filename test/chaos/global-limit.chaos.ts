/**
 * A limit across runners under crashes: four runner processes of
 * concurrency 4 on one container whose tasks share `groups: { api: { global: 2 } }`.
 * Two are SIGKILLed mid-run, one is SIGSTOPped past its lease (a zombie)
 * and woken later, and a fresh one joins. The side-effect log proves that
 * no more than 2 attempts ever worked at once (a frozen or killed process
 * does no work from its signal on), beside the five usual properties.
 */
import { expect, it } from 'vitest';
import { readJsonl } from '../support/side-effects.js';
import { databasePerFile } from '../support/database.js';
import { killChildrenAfterEach } from '../support/child.js';
import type { ChaosRecord } from './support/check.js';
import { freezeRunner, killAll, killRunner, readContainer, report, scenario, settle, sleep, spawnRunner } from './support/scenario.js';
import fs from 'node:fs';
import path from 'node:path';

const db = databasePerFile();
killChildrenAfterEach();

/** Most attempts doing work at once: each from its `start` to its last record, cut at its process's kill and frozen spans. */
function maxWorking(log: string): number {
  const records = readJsonl<ChaosRecord>(log);
  const killAt = new Map<number, number>();
  const frozen = new Map<number, Array<[number, number]>>();
  const stopAt = new Map<number, number>();
  for (const p of records.filter((r) => r.ev === 'proc')) {
    if (p.what === 'kill' && !killAt.has(p.pid)) killAt.set(p.pid, p.t);
    if (p.what === 'stop') stopAt.set(p.pid, p.t);
    if (p.what === 'cont' && stopAt.has(p.pid)) frozen.set(p.pid, [...(frozen.get(p.pid) ?? []), [stopAt.get(p.pid)!, p.t]]);
  }
  for (const [pid, t] of stopAt) if (!frozen.get(pid)?.some(([s]) => s === t)) frozen.set(pid, [...(frozen.get(pid) ?? []), [t, Infinity]]);
  const attempts = new Map<string, ChaosRecord[]>();
  for (const r of records) {
    if (!['start', 'step', 'end', 'fail'].includes(r.ev)) continue;
    const key = `${r.task}/${r.pid}/${r.attempt}`;
    attempts.set(key, [...(attempts.get(key) ?? []), r]);
  }
  const edges: Array<[number, number]> = [];
  for (const rs of attempts.values()) {
    rs.sort((a, b) => a.t - b.t);
    const first = rs[0]!;
    const last = rs[rs.length - 1]!;
    if (first.ev !== 'start') continue;
    const done = last.ev === 'end' || last.ev === 'fail';
    const kill = killAt.get(first.pid);
    const end = done ? last.t : kill !== undefined && kill > last.t ? kill : last.t;
    // Work happens between records; a frozen span cuts the attempt in two.
    let from = first.t;
    for (const [s, e] of (frozen.get(first.pid) ?? []).sort((a, b) => a[0] - b[0])) {
      if (e <= from || s >= end) continue;
      if (s > from) edges.push([from, 1], [s, -1]);
      from = e;
    }
    if (from < end) edges.push([from, 1], [end, -1]);
  }
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let max = 0;
  for (const [, d] of edges) max = Math.max(max, (open += d));
  return max;
}

it('global group limit: 4 runners, SIGKILLs and a zombie, never more than 2 at once', async () => {
  const shape = 'flat:24';
  const s = scenario('global-limit', {
    MONGODB_URI: db().uriWithDb, CONTAINER: 'limited', SHAPE: shape, INC: '1',
    LEASE_MS: '2000', HEARTBEAT_MS: '500', STEPS: '4', STEP_MS: '100', CONCURRENCY: '4',
    TASK_GROUP: 'api', GROUPS: JSON.stringify({ api: { global: 2 } }),
  });
  const go = path.join(s.dir, 'go');
  try {
    const [r1, r2, r3, r4] = ['R1', 'R2', 'R3', 'R4'].map((r) => spawnRunner(s, r, { GO_FILE: go }));
    await Promise.all([r1, r2, r3, r4].map((r) => r!.waitForLine('ready', 60_000)));
    fs.writeFileSync(go, '');
    await sleep(1200);
    await killRunner(s, r1!);
    freezeRunner(s, r2!, true);
    await sleep(1500);
    await killRunner(s, r3!);
    const r5 = spawnRunner(s, 'R5');
    await sleep(2500); // the zombie is frozen for 4 s, twice its lease
    freezeRunner(s, r2!, false);
    const ends = await Promise.all([r2!, r4!, r5].map((r) => settle(s, r, 180_000)));
    const working = maxWorking(s.log);
    report(s, await readContainer(db().uriWithDb, 'limited'), { shape, extra: { maxWorking: working, ends: JSON.stringify(ends) } });
    expect(working, `log: ${s.log}`).toBeLessThanOrEqual(2);
    expect(working).toBe(2);
  } finally {
    await killAll(s);
  }
});
