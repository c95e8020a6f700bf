/**
 * A connection of its own whose commands can be counted, by
 * `name collection` (e.g. `find pts_graph`), from the driver's command
 * monitoring. Call at the top of a test file:
 *
 *   const commands = commandCounting(db);
 *   const { result, commands: sent } = await commands.count(() => Runner.create({ connection: commands.connection(), ... }));
 */
import mongoose from 'mongoose';
import { afterAll, beforeAll } from 'vitest';
import type { TestDatabase } from './database.js';

export function commandCounting(db: () => Pick<TestDatabase, 'uriWithDb'>) {
  let connection: mongoose.Connection | undefined;
  let counted: Map<string, number> | null = null;
  beforeAll(async () => {
    connection = await mongoose.createConnection(db().uriWithDb, { monitorCommands: true }).asPromise();
    connection.getClient().on('commandStarted', (e) => {
      if (!counted) return;
      const target = e.command[e.commandName];
      const key = `${e.commandName} ${typeof target === 'string' ? target : ''}`.trim();
      counted.set(key, (counted.get(key) ?? 0) + 1);
    });
  });
  afterAll(() => connection?.close());
  return {
    /** The counted connection (open from `beforeAll` on). */
    connection: (): mongoose.Connection => connection!,
    /** Runs `body`, counting the commands sent meanwhile. */
    async count<T>(body: () => Promise<T>): Promise<{ result: T; commands: Map<string, number> }> {
      const mine = new Map<string, number>();
      counted = mine;
      try {
        return { result: await body(), commands: mine };
      } finally {
        counted = null;
      }
    },
  };
}
