/**
 * Streaming record reader for EPF flat files.
 *
 * EPF.md, "Flat file format": a record ends with `\x02\n`, fields are separated
 * by `\x01`, and a bare `\n` inside a field is data (app descriptions span
 * lines), so records are never split on `\n`. Lines starting with `#` after
 * the header (the `#recordsWritten:N` trailer) are not data.
 *
 * Memory is bounded by the read chunk plus the longest record: the file is
 * read with an fs stream from a byte offset, never loaded whole.
 */
import { createReadStream } from 'node:fs';
import { isUtf8 } from 'node:buffer';

/** One data record of a flat file. */
export interface RawRecord {
  /** 1-based number of this data row in the file (header and trailer lines not counted). */
  number: number;
  /** Byte offset of the record's first byte in the file. */
  offset: number;
  /** Byte offset just past its `\x02\n` terminator: where the next record starts (bytes). */
  end: number;
  /** Decoded fields, split on `\x01` (invalid UTF-8 replaced by U+FFFD). */
  fields: string[];
  /** The record's bytes without the terminator. A view into a read buffer: copy it to keep it. */
  raw: Buffer;
  /** True when invalid UTF-8 was replaced in this record. */
  replacedUtf8: boolean;
  /** True when the file ended without this record's `\x02\n` terminator (a truncated file). */
  unterminated?: boolean;
}

/** A record's bytes as scanned, before decoding; shared with the header reader. */
export interface ScannedRecord {
  offset: number;
  end: number;
  bytes: Buffer;
  terminated: boolean;
}

const STX = 0x02;
const LF = 0x0a;
/** Read chunk size (bytes): large enough to amortize syscalls, small enough to stay flat. */
export const READ_CHUNK_BYTES = 1 << 20;

/**
 * Yields the `\x02\n`-terminated records from byte `offset` of `path`, with
 * exact byte offsets. A trailing piece without terminator is yielded with
 * `terminated: false` (unless it is only whitespace).
 * @throws the signal's reason when `signal` aborts.
 */
export async function* scanRecords(path: string, offset: number, signal?: AbortSignal): AsyncGenerator<ScannedRecord> {
  const stream = createReadStream(path, { start: offset, highWaterMark: READ_CHUNK_BYTES });
  let pending: Buffer = Buffer.alloc(0);
  let pendingOffset = offset; // file offset of pending[0]
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      signal?.throwIfAborted();
      // Only the unfinished tail of the previous chunk is carried over, so this copy is bounded.
      const buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let start = 0;
      let searchFrom = 0;
      for (;;) {
        const i = buf.indexOf(STX, searchFrom);
        if (i < 0 || i + 1 >= buf.length) break; // a final \x02 may have its \n in the next chunk
        if (buf[i + 1] !== LF) {
          searchFrom = i + 1; // a lone \x02 inside a field is data
          continue;
        }
        yield { offset: pendingOffset + start, end: pendingOffset + i + 2, bytes: buf.subarray(start, i), terminated: true };
        start = searchFrom = i + 2;
      }
      pending = buf.subarray(start);
      pendingOffset += start;
    }
    signal?.throwIfAborted();
    if (pending.length && pending.toString('latin1').trim() !== '') {
      yield { offset: pendingOffset, end: pendingOffset + pending.length, bytes: pending, terminated: false };
    }
  } finally {
    stream.destroy();
  }
}

/** True for a `#key:` or `##...` line: header or trailer metadata, never data (EPF.md: flat-file format). */
export function isMetaLine(bytes: Buffer): boolean {
  if (bytes[0] !== 0x23 /* # */) return false;
  if (bytes[1] === 0x23) return true;
  return /^#[A-Za-z][A-Za-z0-9_]*:/.test(bytes.subarray(0, 64).toString('latin1'));
}

const lenientDecoder = new TextDecoder('utf-8', { fatal: false });

/**
 * Decodes bytes as UTF-8; invalid sequences become U+FFFD (WHATWG rules, so a
 * `\x01` separator after a bad byte is never swallowed).
 */
export function decodeUtf8(bytes: Buffer): { text: string; replaced: boolean } {
  if (isUtf8(bytes)) return { text: bytes.toString('utf8'), replaced: false };
  return { text: lenientDecoder.decode(bytes), replaced: true };
}

/**
 * Reads the data records of an EPF flat file, starting at `from.offset`
 * (bytes; the header's `dataOffset`, or a checkpoint's `offset`) where
 * `from.number` data rows have already been read (0 at the start). Meta lines
 * (`#recordsWritten:N`, `##...`) are skipped and not numbered.
 * To resume, pass `{ offset: last.end, number: last.number }` of the last record handled.
 * @throws the signal's reason when `signal` aborts; fs errors (ENOENT...) as is.
 */
export async function* readRecords(
  path: string,
  from: { offset: number; number: number },
  signal?: AbortSignal,
): AsyncGenerator<RawRecord> {
  let number = from.number;
  for await (const rec of scanRecords(path, from.offset, signal)) {
    if (isMetaLine(rec.bytes)) continue;
    const { text, replaced } = decodeUtf8(rec.bytes);
    number += 1;
    const out: RawRecord = {
      number,
      offset: rec.offset,
      end: rec.end,
      fields: text.split('\x01'),
      raw: rec.bytes,
      replacedUtf8: replaced,
    };
    if (!rec.terminated) out.unterminated = true;
    yield out;
  }
}
