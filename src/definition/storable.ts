import { InvalidOptionError } from '../errors.js';

/** BSON documents nest at most 100 levels. */
const MAX_DEPTH = 100;

/** Why a value would not come back from MongoDB as it was given, and where in it. */
export interface UnstorableReason {
  /** Path inside the value, e.g. `input.rows[3].when`. */
  path: string;
  reason: string;
}

/**
 * Finds the first part of a user value (task input, output, checkpoint,
 * 0.0.1 taskData/processingData) that BSON would store differently from what
 * was given, or null when it round-trips unchanged. Accepted: plain objects,
 * arrays, strings, numbers, booleans, null, undefined, valid Dates, RegExps,
 * binary data and BSON values (Long, ObjectId, ...). Refused, instead of being
 * silently changed by the driver:
 * - functions and Symbols (stored as null, or dropped inside an object);
 * - bigints (`42n` would come back as the number 42, and values beyond 64
 *   bits wrap); pass a string or a BSON `Long` instead;
 * - Map, Set and other class instances (flattened to plain objects);
 * - own `__proto__` keys and Symbol keys (dropped);
 * - keys starting with `$` or containing `.` or NUL (refused by the server
 *   after other writes happened, or stored under a different path);
 * - circular structures and nesting deeper than 100 levels;
 * - invalid Dates.
 */
export function findUnstorable(value: unknown, path: string): UnstorableReason | null {
  try {
    visit(value, path, 0, new Set());
    return null;
  } catch (error) {
    if (error instanceof Unstorable) return { path: error.path, reason: error.reason };
    throw error;
  }
}

/**
 * Throws an {@link InvalidOptionError} naming the path when `value` cannot be
 * stored faithfully (see {@link findUnstorable}); used on inputs, before
 * anything is written. `where` is appended to the option name (e.g. ` (task "a")`).
 */
export function assertStorable(field: string, value: unknown, where = ''): void {
  const found = findUnstorable(value, field);
  if (found) throw new InvalidOptionError(`${found.path}${where}`, found.reason);
}

class Unstorable {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {}
}

function visit(value: unknown, path: string, depth: number, ancestors: Set<object>): void {
  const fail = (reason: string): never => {
    throw new Unstorable(path, reason);
  };
  if (value === null || value === undefined) return;
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return;
    case 'bigint':
      return fail(`a bigint (${String(value)}n) cannot be stored faithfully; pass a string, a number or a BSON Long`);
    case 'function':
    case 'symbol':
      return fail(`a ${typeof value} cannot be stored`);
  }
  const obj = value as object;
  if (obj instanceof Date) {
    if (Number.isNaN(obj.getTime())) fail('is an invalid Date');
    return;
  }
  if (obj instanceof RegExp || ArrayBuffer.isView(obj) || '_bsontype' in obj) return;
  if (depth >= MAX_DEPTH) fail(`nests deeper than ${MAX_DEPTH} levels`);
  if (ancestors.has(obj)) fail('contains a circular reference');
  ancestors.add(obj);
  if (Array.isArray(obj)) {
    obj.forEach((item, i) => visit(item, `${path}[${i}]`, depth + 1, ancestors));
  } else {
    const proto = Object.getPrototypeOf(obj) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      fail(`a ${obj.constructor?.name ?? 'class'} instance cannot be stored as is; use plain objects and arrays`);
    }
    if (Object.getOwnPropertySymbols(obj).length > 0) fail('has Symbol keys, which cannot be stored');
    for (const [key, item] of Object.entries(obj)) {
      if (key.startsWith('$') || key.includes('.') || key.includes('\u0000')) {
        fail(`key ${JSON.stringify(key)} cannot be stored (keys must not start with "$" or contain "." or NUL)`);
      }
      if (key === '__proto__') fail('an own "__proto__" key cannot be stored (the driver drops it)');
      visit(item, `${path}.${key}`, depth + 1, ancestors);
    }
  }
  ancestors.delete(obj);
}
