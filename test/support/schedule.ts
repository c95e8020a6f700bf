/** Helpers for the schedule tests: a clock the test moves, gates that hold tasks, and event waits. */
import type { Scheduler, SchedulerEventMap, SchedulerEventName } from '../../src/index.js';

/** A clock that only moves when the test says so. */
export interface TestClock {
  now(): Date;
  set(iso: string): void;
}

export function testClock(iso: string): TestClock {
  let t = new Date(iso);
  return { now: () => new Date(t), set: (next) => (t = new Date(next)) };
}

/** `2026-11-29T14:00Z`: a slot's instant in a form allowed in container names (no dots). */
export const slotLabel = (slot: Date): string => `${slot.toISOString().slice(0, 16)}Z`;

/** Promises a test resolves by key, to hold a task until it says so. */
export function gates() {
  const open = new Map<string, () => void>();
  const waits = new Map<string, Promise<void>>();
  const get = (key: string) => {
    let p = waits.get(key);
    if (!p) {
      p = new Promise<void>((resolve) => open.set(key, resolve));
      waits.set(key, p);
    }
    return p;
  };
  return {
    wait: get,
    release(key: string) {
      void get(key);
      open.get(key)!();
    },
  };
}

/** Resolves with the first `event` payload matching `pred`; rejects after `timeoutMs`. Register before acting. */
export function nextEvent<E extends SchedulerEventName>(
  scheduler: Scheduler,
  event: E,
  pred: (p: SchedulerEventMap[E]) => boolean = () => true,
  timeoutMs = 30_000,
): Promise<SchedulerEventMap[E]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      scheduler.events.off(event, listener);
      reject(new Error(`no ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (p: SchedulerEventMap[E]) => {
      if (!pred(p)) return;
      clearTimeout(timer);
      scheduler.events.off(event, listener);
      resolve(p);
    };
    scheduler.events.on(event, listener);
  });
}

/** Payloads of `scheduler:error`, collected (and kept out of stderr warnings). */
export function collectErrors(scheduler: Scheduler): SchedulerEventMap['scheduler:error'][] {
  const errors: SchedulerEventMap['scheduler:error'][] = [];
  scheduler.on('scheduler:error', (e) => errors.push(e));
  return errors;
}
