import { InvalidNameError } from '../errors.js';

/** Longest container or task name accepted; keeps composite `_id`s well under index key limits. */
export const MAX_NAME_LENGTH = 200;

/**
 * Rejects names MongoDB cannot store safely as field values used in keys and
 * as map keys: empty, over-long, `$`-prefixed, containing a dot or a NUL.
 */
export function assertSafeName(kind: InvalidNameError['kind'], value: unknown): asserts value is string {
  if (typeof value !== 'string') throw new InvalidNameError(kind, value, 'must be a string');
  if (value.length === 0) throw new InvalidNameError(kind, value, 'must not be empty');
  if (value.trim() !== value) throw new InvalidNameError(kind, value, 'must not start or end with whitespace');
  if (value.length > MAX_NAME_LENGTH) {
    throw new InvalidNameError(kind, value, `must be at most ${MAX_NAME_LENGTH} characters (got ${value.length})`);
  }
  if (value.startsWith('$')) throw new InvalidNameError(kind, value, 'must not start with "$"');
  if (value.includes('.')) throw new InvalidNameError(kind, value, 'must not contain "."');
  if (value.includes('\u0000')) throw new InvalidNameError(kind, value, 'must not contain a NUL character');
}
