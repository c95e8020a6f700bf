import { InvalidOptionError } from '../errors.js';

/**
 * Levels of nesting MongoDB stores in one document, the document itself
 * counting as the first level (each object or array adds one). Source:
 * MongoDB manual, "MongoDB Limits and Thresholds", Nesting Depth for BSON Documents.
 */
export const MAX_STORED_DEPTH = 100;

/**
 * Kinds of values some servers refuse although BSON has them. FerretDB v1
 * closes the connection on NaN, MinKey, MaxKey, Code and Decimal128, and
 * refuses ±Infinity and arrays directly inside arrays per document (code 2).
 * Which ones a server refuses is measured once per server (see the store's
 * value rules), not assumed.
 */
export const SERVER_SENSITIVE_KINDS = ['NaN', 'Infinity', 'nested array', 'MinKey', 'MaxKey', 'Code', 'Decimal128'] as const;

/** One of {@link SERVER_SENSITIVE_KINDS}. */
export type ServerSensitiveKind = (typeof SERVER_SENSITIVE_KINDS)[number];

/** The kinds a server refuses, each with the server's rule in words (e.g. "the server closes the connection on it"). */
export type ValueRules = ReadonlyMap<ServerSensitiveKind, string>;

/** Refuses every server-sensitive kind: finds out whether a value contains one (see {@link findUnstorable}). */
export const REFUSE_ALL_SENSITIVE: ValueRules = new Map(SERVER_SENSITIVE_KINDS.map((k) => [k, 'some servers refuse it']));

/** Why a value would not come back from MongoDB as it was given, and where in it. */
export interface UnstorableReason {
  /** Path inside the value, e.g. `input.rows[3].when`. */
  path: string;
  reason: string;
  /** Set when the value is refused by a rule of the server (see {@link ValueRules}), not by BSON itself. */
  kind?: ServerSensitiveKind;
}

/** How {@link findUnstorable} judges. */
export interface StorableOptions {
  /**
   * Levels of the stored document above the value: 1 for a value stored as a
   * field of a top-level document (inputs, outputs, checkpoints).
   * @defaultValue 1
   */
  storedDepth?: number;
  /** Kinds the server refuses. @defaultValue none */
  rules?: ValueRules;
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
 * - circular structures, and nesting deeper than 100 levels counted as
 *   stored (a value stored as a field may nest 99 levels itself);
 * - invalid Dates;
 * - the kinds `o.rules` says the server refuses (NaN, nested arrays, ...).
 */
export function findUnstorable(value: unknown, path: string, o: StorableOptions = {}): UnstorableReason | null {
  try {
    visit(value, path, 1 + (o.storedDepth ?? 1), new Set(), o.rules ?? NO_RULES);
    return null;
  } catch (error) {
    if (error instanceof Unstorable) return { path: error.path, reason: error.reason, ...(error.kind ? { kind: error.kind } : {}) };
    throw error;
  }
}

const NO_RULES: ValueRules = new Map();

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
    readonly kind?: ServerSensitiveKind,
  ) {}
}

/** `depth`: the stored level `value` would be at (the document itself is level 1). */
function visit(value: unknown, path: string, depth: number, ancestors: Set<object>, rules: ValueRules): void {
  const fail = (reason: string): never => {
    throw new Unstorable(path, reason);
  };
  const refused = (kind: ServerSensitiveKind, what: string): void => {
    const rule = rules.get(kind);
    if (rule !== undefined) throw new Unstorable(path, `${what}, which this server cannot store: ${rule}`, kind);
  };
  if (value === null || value === undefined) return;
  switch (typeof value) {
    case 'number':
      if (Number.isNaN(value)) refused('NaN', 'is NaN');
      else if (!Number.isFinite(value)) refused('Infinity', `is ${value > 0 ? '+' : '-'}Infinity`);
      return;
    case 'string':
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
  if (obj instanceof RegExp || ArrayBuffer.isView(obj)) return;
  if ('_bsontype' in obj) {
    const type = String((obj as { _bsontype: unknown })._bsontype);
    if (type === 'MinKey' || type === 'MaxKey' || type === 'Code' || type === 'Decimal128') refused(type, `is a BSON ${type}`);
    return;
  }
  if (depth > MAX_STORED_DEPTH) {
    fail(`nests deeper than ${MAX_STORED_DEPTH} levels as stored (MongoDB's limit, counting the document that holds the value)`);
  }
  if (ancestors.has(obj)) fail('contains a circular reference');
  ancestors.add(obj);
  if (Array.isArray(obj)) {
    obj.forEach((item, i) => {
      if (Array.isArray(item)) {
        const at = `${path}[${i}]`;
        const rule = rules.get('nested array');
        if (rule !== undefined) throw new Unstorable(at, `is a nested array (an array directly inside an array), which this server cannot store: ${rule}`, 'nested array');
      }
      visit(item, `${path}[${i}]`, depth + 1, ancestors, rules);
    });
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
      visit(item, `${path}.${key}`, depth + 1, ancestors, rules);
    }
  }
  ancestors.delete(obj);
}
