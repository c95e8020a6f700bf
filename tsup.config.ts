import { defineConfig } from 'tsup';

// Two builds: ESM for `import`, CommonJS for `require()` (users of 0.0.1 call
// `require('persistent-task-status')`). p-limit ships only ESM, so the
// CommonJS build bundles it instead of requiring it.
export default defineConfig([
  {
    entry: { index: 'src/index.ts', 'cli/main': 'src/cli/main.ts' },
    format: ['esm'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
  },
  {
    entry: { index: 'src/index.ts' },
    format: ['cjs'],
    dts: true,
    sourcemap: true,
    target: 'node20',
    noExternal: ['p-limit', 'yocto-queue'],
  },
]);
