/**
 * Presence of EPF runs: a holder on this host whose process is gone, or is a
 * zombie (killed, not yet reaped), is judged dead at once; a live one is alive.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { announcePresence, presenceOf } from '../src/ingest/epf/run-presence.js';
import { databasePerFile } from './support/database.js';

const db = databasePerFile();
const children: Array<{ kill(): void }> = [];
afterAll(() => children.forEach((c) => c.kill()));

async function setPid(prefix: string, container: string, pid: number): Promise<void> {
  await db().connection.collection(`${prefix}runs`).updateMany({ container }, { $set: { pid } });
}

describe('EPF run presence', () => {
  it('a live holder is alive; a zombie or a missing process on this host is dead at once', async () => {
    const prefix = 'presence_';
    const hb = await announcePresence(db().connection, { prefix, container: 'c1', runnerId: 'r1', leaseMs: 60_000 });
    try {
      expect((await presenceOf(db().connection, prefix, 'c1')).map((p) => p.alive)).toEqual([true]);

      // `sleep 0` exits at once, and its parent (`sleep 30`, exec'd by sh) never reaps it: a zombie.
      const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(parent);
      const [chunk] = (await once(parent.stdout, 'data')) as [Buffer];
      const zombie = Number(chunk.toString().trim());
      let state = '';
      for (let i = 0; i < 100 && state !== 'Z'; i++) {
        const stat = readFileSync(`/proc/${zombie}/stat`, 'utf8');
        state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
        if (state !== 'Z') await new Promise((r) => setTimeout(r, 50));
      }
      expect(state).toBe('Z');
      await setPid(prefix, 'c1', zombie);
      expect((await presenceOf(db().connection, prefix, 'c1')).map((p) => p.alive)).toEqual([false]);

      parent.kill('SIGKILL');
      await once(parent, 'exit');
      await setPid(prefix, 'c1', parent.pid!);
      expect((await presenceOf(db().connection, prefix, 'c1')).map((p) => p.alive)).toEqual([false]);
    } finally {
      await hb.stop();
    }
    expect(await presenceOf(db().connection, prefix, 'c1')).toEqual([]);
  });
});
