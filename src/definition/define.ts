import { InvalidOptionError } from '../errors.js';
import { assertValidGraph } from './graph.js';
import { assertSafeName } from './names.js';
import { assertStorable } from './storable.js';
import { resolveTaskOptions, type TaskOptions } from './options.js';
import type { CompiledTask, ContainerDefinition, Persistable, TaskHandler, TaskSpec } from './types.js';

/** Container-level options. */
export interface ContainerOptions {
  /**
   * When true, the first task that fails for good stops the container: running
   * tasks are cancelled and the rest skipped. When false, only its downstream
   * tasks are skipped and independent branches finish first.
   * @defaultValue true
   */
  failFast?: boolean;
}

/** Options of one declared task, with its dependencies typed by name. */
export interface DeclaredTaskOptions<D extends string> extends TaskOptions {
  dependsOn?: readonly D[];
  /** BSON-serializable data handed to the handler as `ctx.input`. */
  input?: Persistable;
}

type Outputs = Record<string, unknown>;

/**
 * Declares a container task by task; each `.task()` adds the task's output
 * type, so dependents see `ctx.deps.<name>` typed. Validation happens in
 * `build()`, before anything is written.
 */
export class ContainerBuilder<O extends Outputs = {}> {
  private readonly specs: TaskSpec[] = [];
  // Keyed by handler name: no prototype, so `.handler('__proto__', fn)` registers a handler like any other.
  private readonly handlerMap: Record<string, TaskHandler<any, unknown>> = Object.create(null);

  /** @internal use {@link defineContainer} */
  constructor(
    readonly name: string,
    private readonly options: ContainerOptions = {},
  ) {}

  /** Adds a task with no dependencies. */
  task<N extends string, R>(name: N, handler: TaskHandler<{}, R>): ContainerBuilder<O & { [K in N]: Awaited<R> }>;
  /** Adds a task; `ctx.deps` holds the typed outputs of `dependsOn`. */
  task<N extends string, D extends keyof O & string, R>(
    name: N,
    options: DeclaredTaskOptions<D>,
    handler: TaskHandler<Pick<O, D>, R>,
  ): ContainerBuilder<O & { [K in N]: Awaited<R> }>;
  task(name: string, a: unknown, b?: unknown): ContainerBuilder<any> {
    const [options, handler] = (typeof a === 'function' ? [{}, a] : [a ?? {}, b]) as [
      DeclaredTaskOptions<string>,
      TaskHandler<any, unknown>,
    ];
    // Copied, not spread: a string given as dependsOn must reach validation as is.
    const dependsOn = Array.isArray(options.dependsOn) ? [...options.dependsOn] : options.dependsOn;
    this.specs.push({ ...options, name, dependsOn: dependsOn as string[] | undefined, handler });
    return this;
  }

  /** Registers a handler by key, for tasks added at run time (`ctx.addTasks`). */
  handler(key: string, handler: TaskHandler<any, unknown>): this {
    this.handlerMap[key] = handler;
    return this;
  }

  /** Validates the whole graph and returns the definition a runner executes. */
  build(): ContainerDefinition {
    return compileDefinition({ name: this.name, ...this.options, tasks: this.specs, handlers: this.handlerMap });
  }
}

/** Starts declaring a container. */
export function defineContainer(name: string, options?: ContainerOptions): ContainerBuilder {
  return new ContainerBuilder(name, options);
}

/** The untyped form: the whole container as one object (handy from JavaScript). */
export interface ContainerSpec extends ContainerOptions {
  name: string;
  tasks: TaskSpec[];
  handlers?: Record<string, TaskHandler<any, unknown>>;
}

/** Validates a container given as one object; throws a typed {@link ValidationError}. */
export function compileDefinition(spec: ContainerSpec): ContainerDefinition {
  assertSafeName('container', spec.name);
  if (spec.failFast !== undefined && typeof spec.failFast !== 'boolean') {
    throw new InvalidOptionError('failFast', 'must be a boolean');
  }
  if (!Array.isArray(spec.tasks)) throw new InvalidOptionError('tasks', 'must be an array');
  const handlers = { ...(spec.handlers ?? {}) };
  for (const [key, fn] of Object.entries(handlers)) {
    assertSafeName('handler', key);
    if (typeof fn !== 'function') throw new InvalidOptionError(`handlers.${key}`, 'must be a function');
  }
  const tasks: CompiledTask[] = spec.tasks.map((t) => {
    assertSafeName('task', t?.name);
    if (typeof t.handler !== 'function') throw new InvalidOptionError(`handler (task "${t.name}")`, 'must be a function');
    const dependsOn = assertDependsOn(t.name, t.dependsOn);
    assertStorable('input', t.input, ` (task "${t.name}")`);
    return Object.freeze({
      name: t.name,
      dependsOn: Object.freeze([...new Set(dependsOn)]),
      handlerName: t.name,
      handler: t.handler,
      input: t.input ?? null,
      options: resolveTaskOptions(t.name, t),
    });
  });
  assertValidGraph(tasks);
  return Object.freeze({ name: spec.name, failFast: spec.failFast ?? true, tasks: Object.freeze(tasks), handlers });
}

/** Checks `dependsOn`: an array of task names (a string is refused, not split into letters). */
export function assertDependsOn(task: string, dependsOn: unknown): string[] {
  if (dependsOn === undefined || dependsOn === null) return [];
  if (!Array.isArray(dependsOn)) {
    const got = typeof dependsOn === 'string' ? `a string (${JSON.stringify(dependsOn)}); write ["${dependsOn}"]` : typeof dependsOn;
    throw new InvalidOptionError(`dependsOn (task "${task}")`, `must be an array of task names, got ${got}`);
  }
  for (const d of dependsOn) assertSafeName('task', d);
  return dependsOn as string[];
}
