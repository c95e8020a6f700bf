/**
 * Typed documents from EPF records.
 *
 * Types per `#dbTypes` (EPF.md, "Flat file format" and "Real table schemas";
 * issue 6, "The data model"):
 * - INTEGER, BIGINT (and other *INT): number; beyond 2^53 a BSON Long, never
 *   rounded; beyond 64 bits the row is rejected.
 * - DECIMAL/NUMERIC: Decimal128 (`decimal` mode) or the exact decimal text
 *   (`string` mode, for FerretDB v1 which closes the connection on Decimal128).
 * - DATETIME, DATE, TIMESTAMP: Date in UTC from `YYYY MM DD` or
 *   `YYYY MM DD HH:MM:SS` (dashes also accepted).
 * - BOOLEAN: boolean from 0/1/true/false.
 * - FLOAT/DOUBLE/REAL: number. Anything else (VARCHAR, LONGTEXT...): string.
 * - An empty field is null, whatever the type.
 * `_id` is the key column's value, or an object of the key columns in key order.
 */
import mongoose from 'mongoose';
import { validateHeader, type EpfHeader } from './header.js';
import type { RawRecord } from './records.js';

/** How DECIMAL columns are stored: BSON Decimal128, or the exact decimal text. */
export type DecimalMode = 'decimal128' | 'string';

/** A converted row, or the reason it is rejected. */
export type ConvertResult = { doc: Record<string, unknown> } | { reject: string };

type FieldConverter = (text: string) => unknown;

/** Thrown inside a field converter; becomes a reject reason. */
class BadValue extends Error {}

const { Long, Decimal128 } = mongoose.mongo;
const MAX_LONG = 2n ** 63n - 1n;
const MIN_LONG = -(2n ** 63n);

function toInteger(text: string): unknown {
  if (!/^[-+]?\d+$/.test(text)) throw new BadValue(`not an integer: ${JSON.stringify(text.slice(0, 40))}`);
  const n = Number(text);
  if (Number.isSafeInteger(n)) return n;
  const big = BigInt(text);
  if (big > MAX_LONG || big < MIN_LONG) throw new BadValue(`integer ${text} does not fit in 64 bits`);
  return Long.fromBigInt(big);
}

const DECIMAL_RE = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

function toDecimal(mode: DecimalMode): FieldConverter {
  return (text) => {
    if (!DECIMAL_RE.test(text)) throw new BadValue(`not a decimal: ${JSON.stringify(text.slice(0, 40))}`);
    if (mode === 'string') return text;
    try {
      return Decimal128.fromString(text);
    } catch (err) {
      throw new BadValue(`decimal ${text} does not fit Decimal128: ${(err as Error).message}`);
    }
  };
}

function toFloat(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new BadValue(`not a number: ${JSON.stringify(text.slice(0, 40))}`);
  return n;
}

const DATE_RE = /^(\d{4})[ -](\d{1,2})[ -](\d{1,2})(?:[ T](\d{1,2})[: ](\d{2})(?:[: ](\d{2})(?:\.(\d{1,3}))?)?)?$/;

function toDate(text: string): Date {
  const m = DATE_RE.exec(text.trim());
  if (!m) throw new BadValue(`not a date (YYYY MM DD[ HH:MM:SS]): ${JSON.stringify(text.slice(0, 40))}`);
  const [y, mo, d, h, mi, s, ms] = m.slice(1).map((v) => (v === undefined ? 0 : Number(v))) as number[];
  const millis = Date.UTC(y!, mo! - 1, d!, h, mi, s, m[7] ? Number(m[7].padEnd(3, '0')) : ms);
  const date = new Date(millis);
  // Date.UTC rolls 2013 02 30 over into March; a real export never means that.
  if (date.getUTCMonth() !== mo! - 1 || date.getUTCDate() !== d! || h! > 23 || mi! > 59 || s! > 60) {
    throw new BadValue(`impossible date: ${JSON.stringify(text)}`);
  }
  return date;
}

function toBoolean(text: string): boolean {
  switch (text.trim().toLowerCase()) {
    case '1':
    case 'true':
    case 't':
      return true;
    case '0':
    case 'false':
    case 'f':
      return false;
    default:
      throw new BadValue(`not a boolean: ${JSON.stringify(text.slice(0, 40))}`);
  }
}

/** The converter of one `#dbTypes` entry (case-insensitive, size suffix ignored). */
export function fieldConverter(dbType: string, decimal: DecimalMode): FieldConverter {
  const base = dbType.trim().toUpperCase().replace(/\(.*$/, '').replace(/\s+UNSIGNED$/, '').trim();
  if (/^(TINY|SMALL|MEDIUM|BIG)?INT(EGER)?$/.test(base)) return toInteger;
  if (base === 'DECIMAL' || base === 'NUMERIC' || base === 'DEC') return toDecimal(decimal);
  if (base === 'FLOAT' || base === 'DOUBLE' || base === 'REAL') return toFloat;
  if (base === 'DATETIME' || base === 'DATE' || base === 'TIMESTAMP') return toDate;
  if (base === 'BOOLEAN' || base === 'BOOL') return toBoolean;
  return (text) => text;
}

/**
 * Builds the record-to-document function for a table.
 * Rejects (never throws for) a row with the wrong number of fields, a value
 * its type cannot hold, an empty primary-key field, or an unterminated last record.
 * @param file named in errors.
 * @throws EpfHeaderError when the header is inconsistent (see validateHeader).
 */
export function makeConverter(
  header: EpfHeader,
  file: string,
  opts: { decimal: DecimalMode },
): (rec: RawRecord) => ConvertResult {
  validateHeader(header, file);
  const { columns, primaryKey } = header;
  const converters = header.dbTypes.map((t) => fieldConverter(t, opts.decimal));
  const n = columns.length;
  const single = primaryKey.length === 1 ? primaryKey[0]! : undefined;
  return (rec) => {
    if (rec.unterminated) return { reject: 'last record has no \\x02\\n terminator (truncated file)' };
    if (rec.fields.length !== n) return { reject: `expected ${n} fields, got ${rec.fields.length}` };
    const doc: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const text = rec.fields[i]!;
      if (text === '') {
        doc[columns[i]!] = null;
        continue;
      }
      try {
        doc[columns[i]!] = converters[i]!(text);
      } catch (err) {
        if (err instanceof BadValue) return { reject: `column ${columns[i]}: ${err.message}` };
        throw err;
      }
    }
    if (single !== undefined) {
      if (doc[single] === null) return { reject: `empty primary key ${single}` };
      return { doc: { _id: doc[single], ...doc } };
    }
    if (primaryKey.length > 1) {
      const id: Record<string, unknown> = {};
      for (const key of primaryKey) {
        if (doc[key] === null) return { reject: `empty primary key ${key}` };
        id[key] = doc[key];
      }
      return { doc: { _id: id, ...doc } };
    }
    return { doc };
  };
}
