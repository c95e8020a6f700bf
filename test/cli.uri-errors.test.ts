/**
 * `pts` and malformed or unreachable URIs: every malformed URI exits 2 with
 * one line; an unreachable host exits 1 and says it timed out, after how long.
 */
import { describe, expect, it } from 'vitest';
import { runPts } from './cli.support.js';
import { testMongoUri } from './support/database.js';

const withDb = (db: string) => testMongoUri().replace(/\/?$/, `/${db}`);

describe('pts: malformed URIs exit 2 with one clear line', () => {
  it.each([
    ['a port that is not a number', 'mongodb://127.0.0.1:notaport/x', /port "notaport" of host "127\.0\.0\.1" is not a number from 1 to 65535/],
    ['a port out of range', 'mongodb://127.0.0.1:99999/x', /port "99999"/],
    ['a database name with "."', () => withDb('a.b'), /database name "a\.b" contains "\."/],
    ['a database name with "$"', () => withDb('a$b'), /database name "a\$b" contains "\$"/],
    ['an unsupported option', () => `${withDb('x')}?foo=bar`, /option foo is not supported/],
    ['no host', 'mongodb:///x', /names no host/],
  ])('%s', async (_label, uri, message) => {
    const res = await runPts(typeof uri === 'function' ? uri() : uri, ['list']);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/^pts: invalid MongoDB URI: [^\n]+\n$/);
    expect(res.stderr).toMatch(message);
  });
});

describe('pts: an unreachable host', () => {
  it('says it timed out and after how long (--server-timeout or PTS_SERVER_TIMEOUT_MS)', async () => {
    const [flag, env] = await Promise.all([
      runPts('mongodb://127.0.0.1:1/x', ['--server-timeout', '600', 'list']),
      runPts('mongodb://127.0.0.1:1/x', ['list'], { PTS_SERVER_TIMEOUT_MS: '700' }),
    ]);
    expect(flag.code).toBe(1);
    expect(flag.stderr).toMatch(/^pts: cannot connect to MongoDB at 127\.0\.0\.1:1: timed out after 600 ms \([^\n]+\)\n$/);
    expect(env.code).toBe(1);
    expect(env.stderr).toMatch(/timed out after 700 ms/);
  });

  it('a bad --server-timeout is a usage error', async () => {
    const res = await runPts('mongodb://127.0.0.1:1/x', ['--server-timeout', 'soon', 'list']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^pts: invalid --server-timeout "soon"/);
  });
});
