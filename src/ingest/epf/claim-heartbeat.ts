/**
 * The heartbeat of the file claims one process holds for its slots.
 *
 * A file's claim is held from its first step to its publish. Between two
 * steps no handler of the file runs: the next step may wait for a runner
 * slot (`cpu`, `database`) for hours behind a long import. A claim renewed
 * only while a step runs would expire meanwhile (after `claimLeaseMs`,
 * default 5 minutes), and another slot would take the file over and ingest
 * it again. So this heartbeat renews every claim the process holds, every
 * third of its lease, whether a step of its file runs or waits.
 *
 * A claim leaves the heartbeat when:
 * - publish recorded the file and released the claim;
 * - a step of its file failed (its retry claims it again; a file that failed
 *   for good lets the claim lapse after its lease, as before);
 * - another slot took it over (the claim had expired: this process was
 *   frozen, or the database unreachable, for a whole lease);
 * - no step of its file runs here and its slot's container is no longer
 *   `running` (one exact-`_id` read of the container per beat), e.g. its
 *   last step ran and failed on another machine.
 */
import type { Connection } from 'mongoose';
import { LedgerClaimLostError, MongoStore, type LedgerClaim } from '../../index.js';

/** One claim the heartbeat renews. */
export interface HeldClaim {
  readonly claim: LedgerClaim;
  /** The slot's container (the claim's holder). */
  readonly container: string;
  /** Steps of the file running in this process with this claim. */
  running: number;
  /** Set when a renewal found the claim taken over: the running step must not record its outcome. */
  lost: LedgerClaimLostError | null;
}

/** Renews the file claims of one process (see the module comment). */
export class ClaimHeartbeat {
  private readonly held = new Map<string, HeldClaim>();
  private timer: NodeJS.Timeout | null = null;
  private store: Promise<MongoStore> | null = null;
  private beating = false;

  /**
   * @param connection the database of the slots' containers (default collection prefix)
   * @param everyMs time between two beats, in ms (a third of the claims' lease)
   */
  constructor(
    private readonly connection: Connection,
    private readonly everyMs: number,
  ) {}

  /** Starts renewing `claim` (replacing an earlier hold of the same file by the same slot); counts one running step. */
  hold(container: string, claim: LedgerClaim): HeldClaim {
    const held: HeldClaim = { claim, container, running: 1, lost: null };
    this.held.set(idOf(container, claim.key), held);
    if (!this.timer) {
      this.timer = setInterval(() => void this.beat(), this.everyMs);
      this.timer.unref(); // a process that has nothing else to do exits; its claims then lapse
    }
    return held;
  }

  /** The running step of `held` ended; its claim stays renewed until its next step. */
  stepEnded(held: HeldClaim): void {
    held.running = Math.max(0, held.running - 1);
  }

  /** Stops renewing `held` (unless a later hold replaced it). */
  drop(held: HeldClaim): void {
    const id = idOf(held.container, held.claim.key);
    if (this.held.get(id) === held) this.held.delete(id);
    if (this.held.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** How many claims are renewed now. */
  get size(): number {
    return this.held.size;
  }

  /** One beat: renews every claim held, one at a time; a beat still in progress makes the next one a no-op. */
  private async beat(): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    try {
      const running = new Map<string, boolean>();
      for (const held of [...this.held.values()]) {
        if (held.running === 0) {
          if (!running.has(held.container)) running.set(held.container, await this.containerRuns(held.container));
          if (!running.get(held.container)) {
            this.drop(held);
            continue;
          }
        }
        try {
          await held.claim.renew();
        } catch (error) {
          if (error instanceof LedgerClaimLostError) {
            held.lost = error;
            this.drop(held);
          } // else transient (database unreachable): the next beat tries again
        }
      }
    } finally {
      this.beating = false;
    }
  }

  private async containerRuns(name: string): Promise<boolean> {
    try {
      this.store ??= MongoStore.create(this.connection);
      return (await (await this.store).getContainer(name))?.status === 'running';
    } catch {
      this.store = null;
      return true; // unknown (database unreachable): keep renewing, the next beat looks again
    }
  }
}

const idOf = (container: string, key: string) => `${container}\u0000${key}`;
