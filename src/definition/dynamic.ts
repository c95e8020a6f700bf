import { InvalidOptionError } from '../errors.js';
import { assertValidGraph } from './graph.js';
import { assertDependsOn } from './define.js';
import { assertSafeName } from './names.js';
import { assertStorable } from './storable.js';
import { resolveTaskOptions, type ResolvedTaskOptions } from './options.js';
import type { DynamicTaskSpec } from './types.js';

/** A validated task added at run time. */
export interface CompiledDynamicTask {
  name: string;
  dependsOn: string[];
  handler: string;
  input: unknown;
  options: ResolvedTaskOptions;
}

/**
 * Validates tasks a handler adds at run time: safe names, no duplicates in the
 * batch, dependencies that exist (already, or in the batch), no cycle, and a
 * handler key this runner knows. Names already in the container are dropped
 * (adding is idempotent by name).
 */
export function compileDynamicTasks(
  specs: readonly DynamicTaskSpec[],
  existing: { has(name: string): boolean },
  knownHandlers: { has(key: string): boolean },
): CompiledDynamicTask[] {
  if (!Array.isArray(specs)) throw new InvalidOptionError('tasks', 'addTasks() takes an array of task specs');
  const compiled = specs.map((spec): CompiledDynamicTask => {
    assertSafeName('task', spec?.name);
    const dependsOn = [...new Set<string>(assertDependsOn(spec.name, spec.dependsOn))];
    assertStorable('input', spec.input, ` (task "${spec.name}")`);
    const handler = spec.handler ?? spec.name;
    assertSafeName('handler', handler);
    if (!knownHandlers.has(handler)) {
      throw new InvalidOptionError(
        `handler (task "${spec.name}")`,
        `no handler "${handler}" is registered; register it with .handler("${handler}", fn) or the runner's "handlers" option`,
      );
    }
    return { name: spec.name, dependsOn, handler, input: spec.input ?? null, options: resolveTaskOptions(spec.name, spec) };
  });
  const fresh = compiled.filter((t) => !existing.has(t.name));
  assertValidGraph(fresh, existing);
  return fresh;
}
