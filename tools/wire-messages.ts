/**
 * MongoDB wire-protocol framing for the fault-injecting TCP proxy
 * (tools/tcp-proxy.ts): splits a byte stream into whole messages, reads the
 * command of an OP_MSG, and rewrites the body of an OP_MSG reply.
 * Source: MongoDB wire protocol reference, "OP_MSG" (header: messageLength,
 * requestID, responseTo, opCode, all int32 little-endian; opCode 2013; then
 * flagBits, then sections, kind 0 being one BSON document).
 */
import mongoose from 'mongoose';

const { BSON } = mongoose.mongo;
const OP_MSG = 2013;
const CHECKSUM_PRESENT = 1;

/** Cuts a byte stream into whole wire messages. */
export class MessageFramer {
  private buffered: Buffer = Buffer.alloc(0);

  /** Adds bytes; returns the messages now complete, in order. */
  push(bytes: Buffer): Buffer[] {
    this.buffered = this.buffered.length === 0 ? bytes : Buffer.concat([this.buffered, bytes]);
    const out: Buffer[] = [];
    while (this.buffered.length >= 4) {
      const length = this.buffered.readInt32LE(0);
      if (length < 16 || this.buffered.length < length) break;
      out.push(this.buffered.subarray(0, length));
      this.buffered = this.buffered.subarray(length);
    }
    return out;
  }
}

/** Header fields of a wire message. */
export function header(message: Buffer): { requestId: number; responseTo: number; opCode: number } {
  return { requestId: message.readInt32LE(4), responseTo: message.readInt32LE(8), opCode: message.readInt32LE(12) };
}

/** The kind-0 body of an OP_MSG (the command or the reply), or null for other messages. */
export function bodyOf(message: Buffer): Record<string, unknown> | null {
  if (header(message).opCode !== OP_MSG) return null;
  let at = 20;
  const end = message.length - (message.readUInt32LE(16) & CHECKSUM_PRESENT ? 4 : 0);
  while (at < end) {
    const kind = message[at]!;
    const size = message.readInt32LE(at + 1);
    if (kind === 0) return BSON.deserialize(message.subarray(at + 1, at + 1 + size)) as Record<string, unknown>;
    at += 1 + size;
  }
  return null;
}

/** The OP_MSG `message` with its kind-0 body replaced by `body` (checksum dropped, other sections kept). */
export function withBody(message: Buffer, body: Record<string, unknown>): Buffer {
  const flags = message.readUInt32LE(16);
  const end = message.length - (flags & CHECKSUM_PRESENT ? 4 : 0);
  const parts: Buffer[] = [];
  let at = 20;
  while (at < end) {
    const kind = message[at]!;
    const size = message.readInt32LE(at + 1);
    parts.push(kind === 0 ? Buffer.concat([Buffer.from([0]), Buffer.from(BSON.serialize(body))]) : message.subarray(at, at + 1 + size));
    at += 1 + size;
  }
  const head = Buffer.alloc(20);
  message.copy(head, 0, 0, 20);
  head.writeUInt32LE(flags & ~CHECKSUM_PRESENT, 16);
  const out = Buffer.concat([head, ...parts]);
  out.writeInt32LE(out.length, 0);
  return out;
}
