/**
 * `.md5` companion files of the EPF feed and the digest comparison.
 *
 * Format (EPF.md: "`.md5` companion files"): one BSD-style line,
 * `MD5 (itunes20140812.tbz) = 026de5fd0c1f3b3a7b5e5f4f0e5d1c2a`, about 60 bytes.
 */
import path from 'node:path';
import { Md5FormatError, Md5MismatchError } from './errors.js';

const BSD_LINE = /^MD5 \((.+)\) = ([0-9a-fA-F]{32})$/;

/**
 * Parses a BSD-format `.md5` file and returns the digest as 32 lowercase hex
 * characters. Blank lines and surrounding whitespace (a trailing `\r\n`) are
 * ignored; exactly one `MD5 (...) = ...` line must remain.
 *
 * @param text the `.md5` file's content
 * @param expectedName when given, the name in parentheses must equal it (the
 *   basename of the data file, e.g. `application.tbz`)
 * @throws Md5FormatError (non-retryable) on any other shape, or a name mismatch
 */
export function parseBsdMd5(text: string, expectedName?: string): string {
  const lines = text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  if (lines.length !== 1) {
    throw new Md5FormatError(text, lines.length === 0 ? 'empty' : `expected one line, found ${lines.length}`);
  }
  const match = BSD_LINE.exec(lines[0]!);
  if (!match) throw new Md5FormatError(text, 'expected "MD5 (<name>) = <32 hex digits>"');
  const [, name, hex] = match as unknown as [string, string, string];
  if (expectedName !== undefined && name !== expectedName) {
    throw new Md5FormatError(text, `it names "${name}", expected "${expectedName}"`);
  }
  return hex.toLowerCase();
}

const GNU_LINE = /^([0-9a-fA-F]{32}) [ *](.+)$/;

/**
 * Parses a `.md5` companion in the BSD format the feed uses, or in the GNU
 * `md5sum` format (`<32 hex>  <name>`, a hostile or mirrored feed), and returns
 * the digest as 32 lowercase hex characters.
 * @param expectedName when given, the name in the line must equal it
 * @throws Md5FormatError (non-retryable) for an empty file or any other shape
 */
export function parseMd5File(text: string, expectedName?: string): string {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  const gnu = lines.length === 1 ? GNU_LINE.exec(lines[0]!) : null;
  if (!gnu) return parseBsdMd5(text, expectedName);
  const [, hex, name] = gnu as unknown as [string, string, string];
  if (expectedName !== undefined && path.basename(name) !== expectedName) {
    throw new Md5FormatError(text, `it names "${name}", expected "${expectedName}"`);
  }
  return hex.toLowerCase();
}

/**
 * Compares two hex digests case-insensitively.
 *
 * @param file the file the digest belongs to, named in the error
 * @throws Md5MismatchError naming the file and both digests
 */
export function verifyMd5(actualHex: string, expectedHex: string, file: string): void {
  const actual = actualHex.trim().toLowerCase();
  const expected = expectedHex.trim().toLowerCase();
  if (actual !== expected) throw new Md5MismatchError(file, expected, actual);
}
