/**
 * BSD `.md5` companion files (EPF.md: `MD5 (itunes20140812.tbz) = <hex>`) and
 * the digest comparison.
 */
import { describe, expect, it } from 'vitest';
import { NonRetryableError } from '../src/index.js';
import { Md5FormatError, Md5MismatchError } from '../src/ingest/epf/transfer/errors.js';
import { parseBsdMd5, parseMd5File, verifyMd5 } from '../src/ingest/epf/transfer/md5.js';

const HEX = '026de5fd0c1f3b3a7b5e5f4f0e5d1c2a';

describe('parseBsdMd5', () => {
  it('returns the lowercase digest, ignoring a trailing CRLF and blank lines', () => {
    expect(parseBsdMd5(`MD5 (itunes20140812.tbz) = ${HEX}\n`)).toBe(HEX);
    expect(parseBsdMd5(`\r\nMD5 (application.tbz) = ${HEX.toUpperCase()}\r\n\r\n`, 'application.tbz')).toBe(HEX);
  });

  it('accepts names with spaces and parentheses', () => {
    expect(parseBsdMd5(`MD5 (odd (1).tbz) = ${HEX}`, 'odd (1).tbz')).toBe(HEX);
  });

  it.each([
    ['empty', ''],
    ['GNU format', `${HEX}  application.tbz`],
    ['short digest', `MD5 (application.tbz) = ${HEX.slice(1)}`],
    ['non-hex digest', `MD5 (application.tbz) = ${HEX.slice(1)}z`],
    ['two lines', `MD5 (a.tbz) = ${HEX}\nMD5 (b.tbz) = ${HEX}`],
    ['an HTML error page', '<html><body>401 Authorization Required</body></html>'],
  ])('refuses %s with a non-retryable Md5FormatError', (_label, text) => {
    expect(() => parseBsdMd5(text)).toThrow(Md5FormatError);
    expect(() => parseBsdMd5(text)).toThrow(NonRetryableError);
  });

  it('refuses a file that names another archive', () => {
    expect(() => parseBsdMd5(`MD5 (pricing.tbz) = ${HEX}`, 'application.tbz')).toThrow(/names "pricing.tbz", expected "application.tbz"/);
  });
});

describe('verifyMd5', () => {
  it('accepts equal digests in any case', () => {
    expect(() => verifyMd5(HEX.toUpperCase(), HEX, 'application.tbz')).not.toThrow();
  });

  it('throws Md5MismatchError naming the file and both digests', () => {
    const other = 'f'.repeat(32);
    const err = (() => {
      try {
        verifyMd5(other, HEX, 'itunes20250427/application.tbz');
      } catch (e) {
        return e as Md5MismatchError;
      }
    })();
    expect(err).toBeInstanceOf(Md5MismatchError);
    expect(err).toMatchObject({ file: 'itunes20250427/application.tbz', expected: HEX, actual: other, code: 'EPF_MD5_MISMATCH' });
    expect(err!.message).toContain(HEX);
    expect(err!.message).toContain(other);
  });
});

describe('parseMd5File', () => {
  it('reads the GNU md5sum format as well as BSD, and refuses an empty file', () => {
    const hex = '026de5fd0c1f3b3a7b5e5f4f0e5d1c2a';
    expect(parseMd5File(`${hex.toUpperCase()}  application.tbz\n`, 'application.tbz')).toBe(hex);
    expect(parseMd5File(`${hex} *application.tbz\n`, 'application.tbz')).toBe(hex);
    expect(parseMd5File(`MD5 (application.tbz) = ${hex}\n`, 'application.tbz')).toBe(hex);
    expect(() => parseMd5File('', 'application.tbz')).toThrow(Md5FormatError);
    expect(() => parseMd5File(`${hex}  genre.tbz\n`, 'application.tbz')).toThrow(/genre\.tbz/);
  });
});
