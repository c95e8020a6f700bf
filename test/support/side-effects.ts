/**
 * Append-only JSONL side-effect logs: task code in tests (including child
 * processes that get killed) appends one line per thing that really ran, and
 * the test reads the file back to assert what ran and how often. Kept outside
 * the engine on purpose: it is the ground truth the engine is checked against.
 *
 * No vitest imports here, so child scripts can use it too.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Appends one JSON line. One `write` with O_APPEND, so lines from concurrent processes do not interleave. */
export function appendJsonl(file: string, record: unknown): void {
  const line = `${JSON.stringify(record)}\n`;
  const fd = fs.openSync(file, 'a');
  try {
    fs.writeSync(fd, line);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads all complete lines of a JSONL file ([] if it does not exist). A torn
 * last line (writer killed mid-write) is ignored; a bad line elsewhere throws.
 */
export function readJsonl<T = unknown>(file: string): T[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  // The last piece is '' (file ends with a newline) or a torn, unterminated line.
  const complete = text.split('\n').slice(0, -1);
  return complete.filter((l) => l.trim() !== '').map((l, i) => {
    try {
      return JSON.parse(l) as T;
    } catch {
      throw new Error(`${file}:${i + 1}: not JSON: ${l.slice(0, 200)}`);
    }
  });
}

export interface SideEffectLog<T = Record<string, unknown>> {
  path: string;
  append(record: T): void;
  read(): T[];
  /** Number of records matching `pred` (all records without one). */
  count(pred?: (r: T) => boolean): number;
}

export function sideEffectLog<T = Record<string, unknown>>(file: string): SideEffectLog<T> {
  return {
    path: file,
    append: (record) => appendJsonl(file, record),
    read: () => readJsonl<T>(file),
    count: (pred) => readJsonl<T>(file).filter(pred ?? (() => true)).length,
  };
}

/** A fresh temporary directory (the caller removes it, e.g. in afterAll). */
export function makeTempDir(prefix = 'pts-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}
