/**
 * The README and the guides in docs/ are read and run by people trying the
 * package: their TypeScript examples that import the package (fences
 * opened with exactly ```ts) are executed here, against the test server, with
 * the import pointed at this checkout's sources. Examples that serve until
 * stopped (```ts serve) or are fragments (```ts fragment) are only shown.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { killChildrenAfterEach, REPO_ROOT, spawnTsChild } from './support/child.js';
import { databasePerFile } from './support/database.js';

const pages = ['README.md', ...fs.readdirSync(path.join(REPO_ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const examples = pages.flatMap((page) =>
  [...fs.readFileSync(path.join(REPO_ROOT, page), 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .filter((code) => code.includes("from 'persistent-task-status'"))
    .map((code) => ({ page, code })),
);

const db = databasePerFile();
killChildrenAfterEach();

describe('README examples', () => {
  it('has at least one runnable example in the README', () => {
    expect(examples.filter((e) => e.page === 'README.md').length).toBeGreaterThan(0);
  });

  it.each(examples.map(({ page, code }, i) => [i + 1, page, code] as const))('example %i (%s) runs to completion', async (i, _page, code) => {
    const dir = path.join(REPO_ROOT, '.cache', 'readme-examples');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `example-${i}-${process.pid}.ts`);
    const source = pathToFileURL(path.join(REPO_ROOT, 'src', 'index.ts')).href;
    fs.writeFileSync(
      file,
      [
        code.replaceAll("from 'persistent-task-status'", `from '${source}'`),
        // An example that ends with a run result must have succeeded.
        "if (typeof result !== 'undefined' && (result as { status?: string }).status !== 'succeeded') {",
        "  console.error(`Error: the run ended as ${(result as { status?: string }).status}`);",
        '  process.exit(1);',
        '}',
        "await (await import('mongoose')).default.disconnect();",
        'process.exit(0);',
      ].join('\n'),
    );
    try {
      const child = spawnTsChild(file, [], { MONGODB_URI: db().uriWithDb });
      const exit = await child.waitForExit(30_000);
      expect(child.stderr).not.toMatch(/Error/);
      expect(exit.code).toBe(0);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});
