import { describe, expect, it } from 'vitest';
import { foldTransitions } from '../src/store/fold.js';
import { StreamingFold } from '../src/store/log-fold.js';
import type { Transition } from '../src/store/transition.js';

/** A task's log: claims and outcomes of several attempts, a skip undone, an edit. */
function logOf(task: string, attempts: number): Transition[] {
  const at = (i: number) => new Date(1_700_000_000_000 + i * 1000);
  const out: Transition[] = [];
  let token = 0;
  const push = (e: Omit<Transition, 'container' | 'task' | 'token' | 'at'>) => out.push({ container: 'c', task, token: ++token, at: at(token), ...e });
  push({ kind: 'skipped', reason: 'dependency "x" failed', cause: { task: 'x', token: 3 } });
  push({ kind: 'reset' });
  for (let a = 1; a <= attempts; a++) {
    push({ kind: 'claimed', attempt: a, runnerId: `r${a}`, leaseUntil: at(token + 5), progress: 0, statusText: `try ${a}`, checkpoint: { a } });
    if (a < attempts) push({ kind: 'failed', error: { name: 'Error', message: `boom ${a}`, code: null, stack: null, attempt: a, at: at(token) }, retryAt: at(token + 2) });
    else push({ kind: 'succeeded', output: { task, a } });
  }
  push({ kind: 'edited', set: { statusText: 'by hand' } });
  return out;
}

/** Deterministic shuffle (seeded), so a failure repeats. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const a = [...items];
  let s = seed;
  for (let i = a.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

describe('a log folded while it streams in', () => {
  const tasks = Array.from({ length: 20 }, (_, i) => `t${i}`);
  const logs = new Map(tasks.map((t, i) => [t, logOf(t, 1 + (i % 4))]));

  it('gives each task the state a fold of its sorted log gives, whatever order the entries come in', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const fold = new StreamingFold();
      for (const e of shuffled([...logs.values()].flat(), seed)) fold.add(e);
      fold.finish();
      for (const [task, log] of logs) expect(fold.stateOf(task), `${task}, seed ${seed}`).toEqual(foldTransitions(log));
    }
  });

  it('skips a missing position as a fold of the sorted log does (a gap), and knows which positions succeeded', () => {
    const log = logs.get('t7')!;
    const gapped = log.filter((e) => e.token !== 2);
    const fold = new StreamingFold();
    for (const e of shuffled(gapped, 7)) fold.add(e);
    fold.finish();
    expect(fold.stateOf('t7')).toEqual(foldTransitions(gapped));
    const success = log.find((e) => e.kind === 'succeeded')!;
    expect(fold.succeededAt('t7', success.token)).toBe(true);
    expect(fold.succeededAt('t7', success.token - 1)).toBe(false);
    expect(fold.stateOf('never-seen')).toEqual(foldTransitions([]));
  });
});
