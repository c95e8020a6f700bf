/**
 * Builds EPF flat files byte by byte for parser and importer tests
 * (EPF.md: flat-file format: fields joined by \x01, records end with \x02\n).
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';

export type Field = string | Buffer;

/** One record's bytes: fields joined by \x01, then \x02\n. */
export function record(fields: Field[]): Buffer {
  const parts: Buffer[] = [];
  fields.forEach((f, i) => {
    if (i) parts.push(Buffer.from([0x01]));
    parts.push(typeof f === 'string' ? Buffer.from(f, 'utf8') : f);
  });
  parts.push(Buffer.from([0x02, 0x0a]));
  return Buffer.concat(parts);
}

export interface TableSpec {
  columns: string[];
  primaryKey: string[];
  dbTypes: string[];
  exportMode?: 'FULL' | 'INCREMENTAL';
  rows: Field[][];
  /** Written as #recordsWritten; defaults to rows.length; null leaves the trailer out. */
  recordsWritten?: number | null;
  /** Header lines after the column line, in this order (default: pk, types, mode, legal). */
  order?: ('primaryKey' | 'dbTypes' | 'exportMode' | 'legal')[];
}

/** The file's bytes, and the byte length of its header. */
export function epfBytes(spec: TableSpec): { bytes: Buffer; headerBytes: number } {
  const lines: Buffer[] = [record(['#' + spec.columns[0], ...spec.columns.slice(1)])];
  for (const kind of spec.order ?? ['primaryKey', 'dbTypes', 'exportMode', 'legal']) {
    if (kind === 'primaryKey') lines.push(record(['#primaryKey:' + (spec.primaryKey[0] ?? ''), ...spec.primaryKey.slice(1)]));
    if (kind === 'dbTypes') lines.push(record(['#dbTypes:' + spec.dbTypes[0], ...spec.dbTypes.slice(1)]));
    if (kind === 'exportMode') lines.push(record([`#exportMode:${spec.exportMode ?? 'FULL'}`]));
    if (kind === 'legal') lines.push(record(['##legal: fixture data, not from Apple']));
  }
  const headerBytes = Buffer.concat(lines).length;
  for (const row of spec.rows) lines.push(record(row));
  const n = spec.recordsWritten === undefined ? spec.rows.length : spec.recordsWritten;
  if (n !== null) lines.push(record([`#recordsWritten:${n}`]));
  return { bytes: Buffer.concat(lines), headerBytes };
}

/** A temporary directory for this test file, removed afterwards. */
export function tempDirPerFile(): () => string {
  let dir: string | undefined;
  afterAll(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));
  return () => (dir ??= path.join(os.tmpdir(), `epf-test-${process.pid}-${Math.random().toString(36).slice(2)}`));
}

/** Writes `spec` (or raw bytes) to `dir/name` and returns the path. */
export async function writeEpf(dir: string, name: string, spec: TableSpec | Buffer): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, name);
  await writeFile(file, Buffer.isBuffer(spec) ? spec : epfBytes(spec).bytes);
  return file;
}
