/** Helpers for the schedule fault tests: scheduler processes (test/fixtures/schedule-fault-child.ts) and their effects. */
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir, sideEffectLog, spawnTsChild, type TsChild } from './child.js';
import type { TestDatabase } from './database.js';

/** One line a scheduler process logged; `realMs` is the real time, whatever its wall clock says. */
export interface ScheduleEffect {
  proc: string;
  event: string;
  realMs: number;
  slot?: string;
  state?: string;
  container?: string;
  status?: string;
  resumed?: boolean;
  chunk?: number;
  task?: string;
  error?: string;
  code?: string;
  count?: number;
  truncated?: boolean;
  holder?: string;
}

/** A folder with the effects log and a shared clock file the test moves. */
export function scheduleLab(db: () => TestDatabase) {
  const dir = makeTempDir();
  const log = sideEffectLog<ScheduleEffect>(path.join(dir, 'effects.jsonl'));
  const clockFile = path.join(dir, 'clock');
  return {
    dir,
    log,
    clockFile,
    /** Sets the shared clock (the injected stand-in for the database server's clock). */
    setClock: (iso: string) => fs.writeFileSync(clockFile, iso),
    file: (name: string) => path.join(dir, name),
    /** Starts a scheduler process; `env` configures it (see the fixture's header). */
    spawn(name: string, env: Record<string, string>): TsChild {
      return spawnTsChild(
        'test/fixtures/schedule-fault-child.ts',
        [],
        { MONGODB_URI: db().uriWithDb, LOG: log.path, NAME: name, ...env },
        { label: `scheduler-${name}` },
      );
    },
    effects: (event?: string) => log.read().filter((e) => event === undefined || e.event === event),
  };
}
