/**
 * How `lostRunner` judges a holder, without a database: on the server's
 * clock when the renewal was stamped by the server and the reader knows the
 * server's time (the holder's and the reader's wall clocks then never meet),
 * else by the written expiry against the reader's clock.
 */
import { describe, expect, it } from 'vitest';
import { initialTaskState } from '../src/store/fold.js';
import { lostRunner } from '../src/store/lease-health.js';
import type { TaskState } from '../src/store/types.js';

const LEASE_MS = 30_000;
const HEARTBEAT_MS = 1000;
const READER_NOW = new Date('2026-01-01T12:00:00Z');
/** The server's clock is 7 s behind the reader's; it does not matter. */
const SERVER_NOW = new Date(READER_NOW.getTime() - 7000);

/** A lease whose holder (its clock off by `skewMs`) last renewed `silentMs` ago. */
function running(silentMs: number, skewMs: number, stamped = true): TaskState {
  const holderRenewedAt = READER_NOW.getTime() + skewMs - silentMs;
  return {
    ...initialTaskState(),
    status: 'running',
    token: 1,
    attempt: 1,
    runnerId: 'r',
    leaseUntil: new Date(holderRenewedAt + LEASE_MS),
    leaseMs: LEASE_MS,
    heartbeatMs: HEARTBEAT_MS,
    leaseRenewedAt: stamped ? new Date(SERVER_NOW.getTime() - silentMs) : null,
  };
}

describe('on the server clock', () => {
  it.each([-60_000, 0, 60_000])('a holder whose clock is off by %i ms is alive after one heartbeat and lost after two missed', (skew) => {
    expect(lostRunner(running(HEARTBEAT_MS, skew), READER_NOW, SERVER_NOW)).toBeNull();
    const lost = lostRunner(running(2500, skew), READER_NOW, SERVER_NOW)!;
    expect(lost).toMatchObject({ holder: 'r', expired: false, judgedBy: 'server-clock', silentForMs: 2500, expiresInMs: LEASE_MS - 2500 });
    expect(lost.takeoverAt.getTime()).toBe(READER_NOW.getTime() + LEASE_MS - 2500);
    // The written values stay, for display.
    expect(lost.expiresAt).toEqual(running(2500, skew).leaseUntil);
    const expired = lostRunner(running(LEASE_MS + 1000, skew), READER_NOW, SERVER_NOW)!;
    expect(expired).toMatchObject({ expired: true, expiresInMs: 0 });
    expect(expired.takeoverAt.getTime()).toBe(READER_NOW.getTime() - 1000);
  });

  it('a renewal that landed after the server told its time is fresh', () => {
    const s = { ...running(0, 0), leaseRenewedAt: new Date(SERVER_NOW.getTime() + 500) };
    expect(lostRunner(s, READER_NOW, SERVER_NOW)).toBeNull();
  });
});

describe('without a server stamp or time: the written expiry against the reader’s clock', () => {
  it('is right when the clocks agree', () => {
    expect(lostRunner(running(HEARTBEAT_MS, 0, false), READER_NOW, SERVER_NOW)).toBeNull();
    expect(lostRunner(running(2500, 0), READER_NOW)).toMatchObject({ judgedBy: 'wall-clock', expired: false, expiresInMs: LEASE_MS - 2500 });
  });

  it('and off by as much as the clocks differ (why status asks the server)', () => {
    expect(lostRunner(running(HEARTBEAT_MS, -60_000, false), READER_NOW, SERVER_NOW)).toMatchObject({ judgedBy: 'wall-clock', expired: true });
    expect(lostRunner(running(HEARTBEAT_MS, -60_000), READER_NOW, SERVER_NOW)).toBeNull();
  });

  it('a task that is not running, or has no lease, has no lost runner', () => {
    expect(lostRunner(initialTaskState(), READER_NOW, SERVER_NOW)).toBeNull();
    expect(lostRunner({ ...running(2500, 0), leaseUntil: null }, READER_NOW, SERVER_NOW)).toBeNull();
  });
});
