// `prepare` (npm runs it on `npm install` in a clone, on git installs and on
// `npm pack`): builds dist/ with tsup. tsup is a devDependency, so a
// production install in a clone (`npm ci --omit=dev`) has no tsup: it then
// skips the build with one line instead of failing the install. Plain
// JavaScript, because tsx is a devDependency too.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
try {
  require.resolve('tsup/package.json');
} catch {
  console.error('prepare: tsup (a devDependency) is not installed; dist/ is not built. Run `npm ci` then `npm run build` to build it.');
  process.exit(0);
}
const result = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
process.exit(result.status ?? 1);
