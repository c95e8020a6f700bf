import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One MongoDB-compatible server for the whole run (real mongod if one is
    // at hand, else FerretDB built from ferretdb/); see tools/mongo-server.ts.
    globalSetup: ['test/support/global-setup.ts'],
    // A hang guard, not a deadline: many tests spawn real processes (tsx
    // compiles each child) and wait out leases, which on a 2-core machine
    // under load can take minutes; each wait inside a test has its own bound.
    testTimeout: 180_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    // Crash tests spawn and SIGKILL real child processes: keep workers as
    // processes, and keep parallelism low (FerretDB over SQLite is slow-ish
    // and CI machines have 2 cores).
    pool: 'forks',
    maxWorkers: 2,
  },
});
