import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One MongoDB-compatible server for the whole run (real mongod if one is
    // at hand, else FerretDB built from ferretdb/); see tools/mongo-server.ts.
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    // Crash tests spawn and SIGKILL real child processes: keep workers as
    // processes, and keep parallelism low (FerretDB over SQLite is slow-ish
    // and CI machines have 2 cores).
    pool: 'forks',
    maxWorkers: 2,
  },
});
