/**
 * Header and trailer of an EPF flat file.
 *
 * EPF.md, "Flat file format": the first line holds the column names after a
 * `#`; `#primaryKey:`, `#dbTypes:`, `#exportMode:` and `##legal` lines follow
 * in any order within the first ~6 lines; the file ends with
 * `#recordsWritten:N\x02\n`, which Apple's importer reads from the last ~40 bytes.
 */
import { open } from 'node:fs/promises';
import { EpfHeaderError } from '../errors.js';
import { decodeUtf8, isMetaLine, scanRecords } from './records.js';

/** What a flat file's header declares. */
export interface EpfHeader {
  /** Column names, from the first line `#col\x01col...\x02\n`. */
  columns: string[];
  /** Primary-key columns from `#primaryKey:`, in key order (may be empty). */
  primaryKey: string[];
  /** One type per column from `#dbTypes:`, e.g. `BIGINT`, `VARCHAR(1000)`, `DECIMAL(9,3)`. */
  dbTypes: string[];
  /** From `#exportMode:` when present. */
  exportMode?: 'FULL' | 'INCREMENTAL';
  /** Byte offset where the first data record (or the trailer of an empty table) starts. */
  dataOffset: number;
  /** Other `#key:value` header lines, verbatim by key (e.g. `legal`), for diagnostics. */
  extra: Record<string, string>;
  /** What `#primaryKey:` said when an override replaced it (see readHeader's `primaryKey`). */
  declaredPrimaryKey?: string[];
}

/** Header lines are looked for in this many leading records (EPF.md: "within the first ~6 lines"). */
export const MAX_HEADER_LINES = 12;

/**
 * Reads and validates the header of the flat file at `path`; `opts.primaryKey`
 * replaces what `#primaryKey:` declares (it is kept in `declaredPrimaryKey`).
 * @throws EpfHeaderError naming `path` when there is no column line, no
 *   `#dbTypes:` line, a type count that differs from the columns, an unknown
 *   `#exportMode:`, or a `#primaryKey:` column the table lacks.
 */
export async function readHeader(path: string, opts: { primaryKey?: string[] } = {}): Promise<EpfHeader> {
  let columns: string[] | undefined;
  let primaryKey: string[] = [];
  let dbTypes: string[] | undefined;
  let exportMode: string | undefined;
  const extra: Record<string, string> = {};
  let dataOffset = 0;
  let lines = 0;
  for await (const rec of scanRecords(path, 0)) {
    const isHash = rec.bytes[0] === 0x23;
    if (!isHash || lines >= MAX_HEADER_LINES || rec.bytes.subarray(0, 16).toString('latin1') === '#recordsWritten:') {
      dataOffset = rec.offset;
      break;
    }
    if (!rec.terminated) throw new EpfHeaderError(path, `header line ${lines + 1} has no \\x02\\n terminator (truncated file?)`);
    lines += 1;
    dataOffset = rec.end;
    const text = decodeUtf8(rec.bytes).text;
    if (!isMetaLine(rec.bytes)) {
      if (columns) throw new EpfHeaderError(path, `a second column line in the header: ${JSON.stringify(text.slice(0, 80))}`);
      columns = text.slice(1).split('\x01');
      continue;
    }
    if (text.startsWith('##')) {
      extra[text.slice(2).split(':', 1)[0] ?? ''] = text.slice(2);
      continue;
    }
    const colon = text.indexOf(':');
    const key = text.slice(1, colon);
    const value = text.slice(colon + 1);
    if (key === 'primaryKey') primaryKey = value === '' ? [] : value.split('\x01');
    else if (key === 'dbTypes') dbTypes = value.split('\x01');
    else if (key === 'exportMode') exportMode = value.trim();
    else extra[key] = value;
  }
  if (!columns) throw new EpfHeaderError(path, 'no column line (#col\\x01col...) at the start of the file');
  const header: EpfHeader = { columns, primaryKey, dbTypes: dbTypes ?? [], dataOffset, extra };
  if (!dbTypes) throw new EpfHeaderError(path, 'no #dbTypes: line in the header');
  if (exportMode !== undefined) {
    if (exportMode !== 'FULL' && exportMode !== 'INCREMENTAL') {
      throw new EpfHeaderError(path, `#exportMode:${exportMode} is neither FULL nor INCREMENTAL`);
    }
    header.exportMode = exportMode;
  }
  if (opts.primaryKey) {
    // A per-table override of a known quirk (the v5 genre header names device_type_id): kept visible.
    header.declaredPrimaryKey = header.primaryKey;
    header.primaryKey = opts.primaryKey;
  }
  validateHeader(header, path);
  return header;
}

/**
 * Checks a header's internal consistency (also for headers built by hand).
 * @throws EpfHeaderError naming `file`.
 */
export function validateHeader(header: EpfHeader, file: string): void {
  const { columns, primaryKey, dbTypes } = header;
  if (columns.length === 0 || columns.some((c) => c === '')) {
    throw new EpfHeaderError(file, `empty column name in ${JSON.stringify(columns)}`);
  }
  const dup = columns.find((c, i) => columns.indexOf(c) !== i);
  if (dup) throw new EpfHeaderError(file, `column "${dup}" is declared twice`);
  if (dbTypes.length !== columns.length) {
    throw new EpfHeaderError(file, `#dbTypes lists ${dbTypes.length} types for ${columns.length} columns`);
  }
  for (const key of primaryKey) {
    if (!columns.includes(key)) {
      throw new EpfHeaderError(file, `#primaryKey names column "${key}", which the table lacks (columns: ${columns.join(', ')})`);
    }
  }
}

/** Bytes read from the end of the file to find the trailer (Apple's importer reads ~40). */
const TRAILER_WINDOW_BYTES = 256;

/**
 * Reads `N` from the `#recordsWritten:N\x02\n` trailer in the last bytes of
 * `path`; undefined when the file does not end with one (truncated file).
 * @throws fs errors (ENOENT...) as is.
 */
export async function readRecordsWritten(path: string): Promise<number | undefined> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const length = Math.min(size, TRAILER_WINDOW_BYTES);
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, size - length);
    const m = /#recordsWritten:(\d+)\x02\n?[\r\n\t ]*$/.exec(buf.toString('latin1'));
    return m ? Number(m[1]) : undefined;
  } finally {
    await fh.close();
  }
}
