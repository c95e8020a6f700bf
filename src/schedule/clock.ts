/** A time source; tests inject one to drive schedules. */
export interface Clock {
  now(): Date;
}

/**
 * The time slots are judged on. Every scheduler of a deployment must read
 * the same clock, or one machine's wrong clock would claim slots early (its
 * clock ahead), or move the shared cursor past slots nobody ran (a jump). So
 * by default it is the database server's clock (`hello`'s `localTime`, read
 * at every tick, see src/store/mongo/server-clock.ts), and this machine's
 * clock only when the server does not tell its time. An injected `clock`
 * (tests) replaces both: give every scheduler of the test the same one.
 */
export class SlotTime {
  /** Which clock the last reading came from. */
  lastSource: 'injected' | 'server' | 'local' = 'local';

  constructor(
    private readonly injected: Clock | null,
    private readonly serverTime: (() => Promise<Date | null>) | null,
  ) {}

  /** Now, on the shared clock (see the class). */
  async now(): Promise<Date> {
    if (this.injected) {
      this.lastSource = 'injected';
      return this.injected.now();
    }
    const server = this.serverTime ? await this.serverTime().catch(() => null) : null;
    if (server) {
      this.lastSource = 'server';
      return server;
    }
    this.lastSource = 'local';
    return new Date();
  }
}
