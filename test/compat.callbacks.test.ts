import { describe, expect, it } from 'vitest';
import { InvalidNameError } from '../src/index.js';
import { compatClientPerFile, uniqueName } from './support/compat.js';
import { sleep } from './support/engine.js';

const { api } = compatClientPerFile();

/** Runs `fn` with our own uncaughtException listener in place of the test runner's. */
async function catchingUncaught(fn: (uncaught: unknown[]) => Promise<void>): Promise<unknown[]> {
  const saved = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  const uncaught: unknown[] = [];
  const listener = (error: unknown) => void uncaught.push(error);
  process.on('uncaughtException', listener);
  try {
    await fn(uncaught);
  } finally {
    process.removeListener('uncaughtException', listener);
    for (const l of saved) process.on('uncaughtException', l);
  }
  return uncaught;
}

describe('compat callbacks', () => {
  it('are called asynchronously, also for errors found before any I/O', async () => {
    const order: string[] = [];
    await new Promise<void>((resolve) => {
      api().getTaskContainer('$invalid', (err) => {
        order.push(`callback:${(err as Error).constructor.name}`);
        resolve();
      });
      order.push('returned');
    });
    expect(order).toEqual(['returned', 'callback:InvalidNameError']);
  });

  it('a callback that throws is not called a second time; the error surfaces as uncaught', async () => {
    const name = uniqueName('throwing');
    let calls = 0;
    const uncaught = await catchingUncaught(async (seen) => {
      api().getOrCreateTaskContainer(name, () => {
        calls += 1;
        throw new Error('thrown by the callback');
      });
      for (let i = 0; i < 200 && seen.length === 0; i++) await sleep(10);
      await sleep(50); // a second call would come right after
    });
    expect(calls).toBe(1);
    expect(uncaught).toHaveLength(1);
    expect((uncaught[0] as Error).message).toBe('thrown by the callback');

    // Same for a callback that throws while handling an error.
    let errorCalls = 0;
    const again = await catchingUncaught(async (seen) => {
      api().deleteTaskContainer('', (err) => {
        errorCalls += 1;
        expect(err).toBeInstanceOf(InvalidNameError);
        throw new Error('thrown on error');
      });
      for (let i = 0; i < 200 && seen.length === 0; i++) await sleep(10);
      await sleep(50);
    });
    expect(errorCalls).toBe(1);
    expect((again[0] as Error).message).toBe('thrown on error');
  });

  it('without a callback, methods return promises that reject with typed errors', async () => {
    const p = api().getTaskContainer('a.b');
    expect(p).toBeInstanceOf(Promise);
    await expect(p).rejects.toBeInstanceOf(InvalidNameError);
    const c = await api().getOrCreateTaskContainer(uniqueName('promise'));
    const added = c.addTask('x', null);
    expect(added).toBeInstanceOf(Promise);
    expect((await added).name()).toBe('x');
    // The callback argument may be null, as in `fn(name, values, null)`.
    await expect(c.getTask('x', null as never)).resolves.not.toBeNull();
  });
});
