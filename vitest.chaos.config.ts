import { defineConfig } from 'vitest/config';

/**
 * The chaos suite (`npm run test:chaos`): real runner processes, SIGKILLs,
 * SIGSTOPs, a partition proxy, clock skew and database faults, judged from
 * side-effect logs (test/chaos/). Files run one at a time: the scenarios are
 * timing-sensitive and CI machines have 2 cores.
 */
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.chaos.ts'],
    globalSetup: ['test/support/global-setup.ts', 'test/chaos/support/summary-setup.ts'],
    testTimeout: 240_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
  },
});
