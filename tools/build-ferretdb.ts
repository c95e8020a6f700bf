/**
 * Ensures the FerretDB test server used by the test suite is built
 * (`npm run test:db`; the build itself is in ./ferretdb-build.ts). Skipped when
 * MONGODB_URI points at a real server.
 *
 *   tsx tools/build-ferretdb.ts [--force]
 */
import { ensureFerretDbBinary, FERRETDB_BINARY, REPO_ROOT } from './ferretdb-build.js';
import path from 'node:path';

const force = process.argv.includes('--force');

if (process.env.MONGODB_URI?.trim() && !force) {
  console.log('persistent-task-status: MONGODB_URI is set; tests will use it, not building FerretDB.');
} else {
  try {
    await ensureFerretDbBinary({ force });
    console.log(`persistent-task-status: FerretDB test server ready: ${path.relative(REPO_ROOT, FERRETDB_BINARY)}`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  }
}
