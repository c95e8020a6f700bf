/**
 * The containers the benchmark runs, declared with the public builder
 * (`defineContainer(...).task(...)`). Building is timed apart from the
 * engine: at 100k tasks the definition alone takes a while.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { defineContainer, type ContainerBuilder, type ContainerDefinition, type TaskHandler } from '../../src/index.js';

export type Shape = 'flat' | 'chain';

const noop: TaskHandler<any, unknown> = async () => null;

export interface Built {
  definition: ContainerDefinition;
  /** Seconds spent declaring and validating (build()) the definition. */
  buildSeconds: number;
}

function timedBuild(declare: () => ContainerBuilder<any>): Built {
  const t0 = performance.now();
  const definition = declare().build();
  return { definition, buildSeconds: (performance.now() - t0) / 1000 };
}

/** `flat`: n independent no-op tasks; `chain`: task i depends on task i-1. */
export function shaped(name: string, shape: Shape, n: number): Built {
  return timedBuild(() => {
    const c = defineContainer(name) as ContainerBuilder<any>;
    for (let i = 0; i < n; i++) {
      if (shape === 'chain' && i > 0) c.task(`t${i}`, { dependsOn: [`t${i - 1}`] }, noop);
      else c.task(`t${i}`, noop);
    }
    return c;
  });
}

/** n independent tasks that each sleep `ms`. */
export function sleepers(name: string, n: number, ms: number): Built {
  return timedBuild(() => {
    const c = defineContainer(name) as ContainerBuilder<any>;
    for (let i = 0; i < n; i++) c.task(`t${i}`, async () => void (await sleep(ms)));
    return c;
  });
}

/**
 * n diamonds `a → b, c → d`; b and c sleep a random 10–50 ms (seeded, so
 * every run sleeps the same).
 */
export function diamonds(name: string, n: number): Built {
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  return timedBuild(() => {
    const c = defineContainer(name) as ContainerBuilder<any>;
    for (let i = 0; i < n; i++) {
      const mb = 10 + Math.floor(rand() * 41);
      const mc = 10 + Math.floor(rand() * 41);
      c.task(`a${i}`, noop);
      c.task(`b${i}`, { dependsOn: [`a${i}`] }, async () => void (await sleep(mb)));
      c.task(`c${i}`, { dependsOn: [`a${i}`] }, async () => void (await sleep(mc)));
      c.task(`d${i}`, { dependsOn: [`b${i}`, `c${i}`] }, noop);
    }
    return c;
  });
}
