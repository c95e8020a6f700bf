/**
 * `.md5` companion files. EPF.md: they use the BSD format
 * `MD5 (itunes20140812.tbz) = 026de5fd0c1f3b3a7b5e5f4f0e5d1c2a`, about 60 bytes.
 */
import { EpfMd5FormatError } from './errors.js';

const BSD = /^MD5 \((.+)\) = ([0-9a-fA-F]{32})\s*$/;
const GNU = /^([0-9a-fA-F]{32}) [ *](.+?)\s*$/;

/**
 * The lowercase hex digest of a BSD-format md5 line (GNU `md5sum` lines are
 * accepted too). With `expectedName`, the named file must match it.
 * @throws EpfMd5FormatError when no line parses or the name differs
 */
export function parseBsdMd5(text: string, expectedName?: string, url?: string): string {
  for (const line of text.split(/\r?\n/)) {
    const bsd = BSD.exec(line.trim());
    const gnu = bsd ? undefined : GNU.exec(line.trim());
    const name = bsd?.[1] ?? gnu?.[2];
    const hex = bsd?.[2] ?? gnu?.[1];
    if (name === undefined || hex === undefined) continue;
    if (expectedName !== undefined && name !== expectedName) {
      throw new EpfMd5FormatError(`md5 file names "${name}", expected "${expectedName}"${url ? `: ${url}` : ''}`, url);
    }
    return hex.toLowerCase();
  }
  const shown = JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text);
  throw new EpfMd5FormatError(`Not a BSD md5 line ("MD5 (name) = hex")${url ? ` in ${url}` : ''}: ${shown}`, url);
}
