/**
 * Ensures the FerretDB server used by the test suite and the embedded
 * database is built (`npm run test:db`; the build is in
 * src/embedded/ferretdb-build.ts). Skipped when MONGODB_URI points at a real server.
 *
 *   tsx tools/build-ferretdb.ts [--force]
 */
import { ensureFerretDbBinary } from '../src/embedded/ferretdb-build.js';

const force = process.argv.includes('--force');

if (process.env.MONGODB_URI?.trim() && !force) {
  console.log('persistent-task-status: MONGODB_URI is set; tests will use it, not building FerretDB.');
} else {
  try {
    const binary = await ensureFerretDbBinary({ force });
    console.log(`persistent-task-status: FerretDB test server ready: ${binary}`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  }
}
