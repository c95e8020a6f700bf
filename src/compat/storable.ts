import { InvalidOptionError } from '../errors.js';

/** BSON documents nest at most 100 levels. */
const MAX_DEPTH = 100;

/**
 * Checks that a user value (taskData, processingData) survives a round trip
 * through MongoDB and FerretDB unchanged: plain objects, arrays, strings,
 * numbers, booleans, null, valid Dates, binary data and BSON values. Rejects
 * functions, symbols, cycles, class instances BSON would flatten (Set, custom
 * classes), and keys MongoDB treats specially (`$`-prefixed, dotted, NUL), so
 * that bad input fails before anything is written.
 */
export function assertStorable(field: string, value: unknown): void {
  visit(value, field, 0, new Set());
}

function visit(value: unknown, path: string, depth: number, ancestors: Set<object>): void {
  const fail = (reason: string): never => {
    throw new InvalidOptionError(path, reason);
  };
  if (value === null || value === undefined) return;
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'bigint':
      return;
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
    for (const [key, item] of Object.entries(obj)) {
      if (key.startsWith('$') || key.includes('.') || key.includes('\u0000')) {
        fail(`key ${JSON.stringify(key)} cannot be stored (keys must not start with "$" or contain "." or NUL)`);
      }
      visit(item, `${path}.${key}`, depth + 1, ancestors);
    }
  }
  ancestors.delete(obj);
}
