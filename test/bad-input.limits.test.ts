/**
 * Limits are validated once, at Runner.create, with an InvalidOptionError
 * naming the option, before anything is written.
 */
import { describe, expect, it } from 'vitest';
import { defineContainer, InvalidOptionError, Runner, type RunnerOptions } from '../src/index.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();

async function refused(options: Partial<RunnerOptions>, option: string): Promise<void> {
  const container = defineContainer(`limits-${Math.random().toString(36).slice(2)}`).task('a', async () => 1);
  const error = await Runner.create({ connection: db().connection, container, ...options } as RunnerOptions).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(InvalidOptionError);
  expect((error as InvalidOptionError).option).toBe(option);
  // Nothing was written: the container does not exist.
  expect(await db().connection.collection('pts_containers').countDocuments({ _id: container.build().name } as never)).toBe(0);
}

describe('limits across runners', () => {
  it('a global group limit must be a positive integer', async () => {
    await refused({ groups: { api: { global: 0 } } }, 'groups.api.global');
    await refused({ groups: { api: { global: 1.5 } } }, 'groups.api.global');
    await refused({ groups: { api: { global: '2' as unknown as number } } }, 'groups.api.global');
  });

  it('a group limit object must say something, and only what is known', async () => {
    await refused({ groups: { api: {} } }, 'groups.api');
    await refused({ groups: { api: { max: 2 } as never } }, 'groups.api');
    await refused({ groups: { api: null as never } }, 'groups.api');
    await refused({ groups: { api: { concurrency: -1 } } }, 'groups.api.concurrency');
  });

  it('a rate limit must be { max, perMs } of positive integers, perMs a timer', async () => {
    await refused({ groups: { api: { rate: { max: 0, perMs: 1000 } } } }, 'groups.api.rate.max');
    await refused({ groups: { api: { rate: { max: 2.5, perMs: 1000 } } } }, 'groups.api.rate.max');
    await refused({ groups: { api: { rate: { perMs: 1000 } as never } } }, 'groups.api.rate.max');
    await refused({ groups: { api: { rate: { max: 5, perMs: 0 } } } }, 'groups.api.rate.perMs');
    await refused({ groups: { api: { rate: { max: 5, perMs: Number.POSITIVE_INFINITY } } } }, 'groups.api.rate.perMs');
    await refused({ groups: { api: { rate: { max: 5, perMs: 2 ** 31 } } } }, 'groups.api.rate.perMs');
    await refused({ groups: { api: { rate: { max: 5, perMs: '1000' as unknown as number } } } }, 'groups.api.rate.perMs');
    await refused({ groups: { api: { rate: { max: 5, perMs: 1000, burst: 2 } as never } } }, 'groups.api.rate');
    await refused({ groups: { api: { rate: 5 as never } } }, 'groups.api.rate');
  });

  it('globalConcurrency must be a positive integer', async () => {
    await refused({ globalConcurrency: 0 }, 'globalConcurrency');
    await refused({ globalConcurrency: Number.NaN }, 'globalConcurrency');
  });

  it('the per-runner form still works beside the global one', async () => {
    const container = defineContainer('limits-ok').task('a', { group: 'api' }, async () => 1);
    const runner = await Runner.create({
      connection: db().connection, container, pollMs: 50, globalConcurrency: 4,
      groups: { api: 1, db: { concurrency: 2, global: 3 }, net: { rate: { max: 10, perMs: 1000 } } },
    });
    expect((await runner.run()).status).toBe('succeeded');
  });
});
