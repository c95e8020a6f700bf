import { cpSync } from 'node:fs';
import { defineConfig } from 'tsup';

// Two builds: ESM for `import`, CommonJS for `require()` (users of 0.0.1 call
// `require('persistent-task-status')`). `persistent-task-status/epf` is ESM
// only: htmlparser2, which it parses feed listings with, ships only ESM. p-limit ships only ESM, so the
// CommonJS build bundles it instead of requiring it.
//
// mongoose is a peer dependency: both builds must import the user's own copy,
// never carry one (a second mongoose would not share the user's connection).
// mongodb-memory-server is an optional peer, loaded on demand by the
// embedded server, and @opentelemetry/api an optional peer loaded by runners
// when installed (src/observe/tracing.ts). They are listed here explicitly, although tsup already
// treats peers as external, so that a change to package.json cannot silently
// start bundling them (test/package.published-shape.test.ts checks dist).
const external = ['mongoose', 'mongodb', 'mongodb-memory-server', 'mongodb-memory-server-core', '@opentelemetry/api'];

export default defineConfig([
  {
    // worker-entry: the plain-JavaScript side of runInWorker, loaded by worker threads as a file of its own.
    entry: { index: 'src/index.ts', embedded: 'src/embedded/index.ts', epf: 'src/ingest/epf/index.ts', 'cli/main': 'src/cli/main.ts', 'worker-entry': 'src/engine/worker-entry.js' },
    format: ['esm'],
    dts: { entry: { index: 'src/index.ts', embedded: 'src/embedded/index.ts', epf: 'src/ingest/epf/index.ts' } },
    sourcemap: true,
    clean: true,
    target: 'node20',
    external,
    // The dashboard's browser assets ship as files beside the bundles (src/observe/dashboard/assets.ts finds them).
    onSuccess: async () => cpSync('src/observe/dashboard/assets', 'dist/dashboard-assets', { recursive: true }),
  },
  {
    entry: { index: 'src/index.ts', embedded: 'src/embedded/index.ts' },
    format: ['cjs'],
    dts: true,
    sourcemap: true,
    target: 'node20',
    // import.meta.url (used to find the shipped FerretDB sources) in CommonJS.
    shims: true,
    external,
    noExternal: ['p-limit', 'yocto-queue'],
  },
]);
