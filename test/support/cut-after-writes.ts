import type { Connection } from 'mongoose';

const WRITES = new Set(['insert', 'update', 'delete', 'findAndModify']);

/**
 * Kills this process (SIGKILL, by its own hand) right after the `n`-th write
 * command was acknowledged, before the next one is sent: a process death
 * between two writes of an operation, wherever they are in the code. Writes
 * are counted from the driver's command monitoring (the connection needs
 * `monitorCommands: true`). The update gates of servers whose updates are
 * not atomic (`pts_gates`, see src/store/mongo/update-gate.ts) are not
 * counted: they guard a write, and a death while one is held is tested apart.
 * @returns the number of writes counted so far
 */
export function cutAfterWrites(connection: Connection, n: number): () => number {
  let writes = 0;
  const gateWrites = new Set<number>();
  const client = connection.getClient();
  client.on('commandStarted', (event) => {
    const target = event.command[event.commandName];
    if (WRITES.has(event.commandName) && typeof target === 'string' && target.endsWith('_gates')) gateWrites.add(event.requestId);
  });
  client.on('commandSucceeded', (event) => {
    if (!WRITES.has(event.commandName) || gateWrites.delete(event.requestId)) return;
    if (n > 0 && ++writes >= n) process.kill(process.pid, 'SIGKILL');
  });
  return () => writes;
}
