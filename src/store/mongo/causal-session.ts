import { AsyncLocalStorage } from 'node:async_hooks';
import type { Connection, mongo } from 'mongoose';
import { TaskStatusError } from '../../errors.js';

type ClientSession = mongo.ClientSession;
type Timestamp = mongo.Timestamp;
type ClusterTime = NonNullable<ClientSession['clusterTime']>;

/**
 * One causally consistent session per store (MongoDB's causal consistency,
 * manual "Causal Consistency and Read and Write Concerns"): every read the
 * store makes sees every write the store made before it, also after a
 * failover, when reads and writes use `majority`.
 *
 * The store's operations run concurrently, and one driver session must not
 * carry concurrent retryable writes (the server refuses an older
 * `txnNumber` once a newer one started, and serialises operations of one
 * session). So the one session is a causal point (`operationTime` and
 * `clusterTime`) the store holds: each operation runs in a short-lived
 * driver session (server sessions are pooled by the driver) that starts at
 * that point (reads then carry `afterClusterTime`) and moves it on with its
 * reply's times when it ends. Causally, that is one session.
 *
 * Used only where it means something: a replica set or a sharded cluster
 * (`hello` names a set, or is a mongos) that supports sessions. A standalone
 * server and FerretDB (measured: v1.24 reports `logicalSessionTimeoutMinutes`
 * but no `setName`, and its replies carry no `operationTime`) get none.
 */
export class CausalSession {
  private operationTime: Timestamp | undefined;
  private clusterTime: ClusterTime | undefined;
  private readonly current = new AsyncLocalStorage<ClientSession>();

  private constructor(private readonly connection: Connection) {}

  /**
   * The causal session a store gets for its `causalConsistency` option:
   * `'auto'` (the default) detects it (see {@link detect}), `'always'` forces
   * it, `'never'` gives none (null).
   * @throws TaskStatusError `PTS_INVALID_OPTION` for another value, naming the option
   */
  static async open(connection: Connection, option: unknown = 'auto'): Promise<CausalSession | null> {
    if (option !== 'auto' && option !== 'always' && option !== 'never') {
      throw new TaskStatusError('PTS_INVALID_OPTION', `Invalid option "causalConsistency": ${JSON.stringify(option)} (use 'auto', 'always' or 'never')`);
    }
    return option === 'never' ? null : CausalSession.detect(connection, option === 'always');
  }

  /**
   * The store's causal session when the server behind `connection` supports
   * causal consistency, else null (see the class comment).
   */
  static async detect(connection: Connection, force = false): Promise<CausalSession | null> {
    if (force) return new CausalSession(connection);
    const hello = (await connection.db!.admin().command({ hello: 1 }).catch(() => null)) as {
      setName?: unknown;
      msg?: unknown;
      logicalSessionTimeoutMinutes?: unknown;
    } | null;
    if (!hello || hello.logicalSessionTimeoutMinutes == null) return null;
    return typeof hello.setName === 'string' || hello.msg === 'isdbgrid' ? new CausalSession(connection) : null;
  }

  /**
   * Runs one operation in a driver session at the store's causal point, and
   * moves the point on with the operation's reply. The session ends when the
   * operation settles (not at a deadline that gave up on it), so its server
   * session is never shared by two operations in flight.
   */
  run<T>(fn: (session: ClientSession) => Promise<T>): Promise<T> {
    const session = this.connection.getClient().startSession({ causalConsistency: true });
    if (this.clusterTime) session.advanceClusterTime(this.clusterTime);
    if (this.operationTime) session.advanceOperationTime(this.operationTime);
    const result = this.current.run(session, () => fn(session));
    result
      .finally(() => {
        this.advance(session);
        return session.endSession();
      })
      .catch(() => undefined);
    return result;
  }

  /** The driver session of the operation running in this async context, if any (for queries built inside `run`). */
  get active(): ClientSession | undefined {
    return this.current.getStore();
  }

  /** The store's causal point, for tests and diagnostics. */
  get point(): { operationTime?: Timestamp; clusterTime?: ClusterTime } {
    return { operationTime: this.operationTime, clusterTime: this.clusterTime };
  }

  private advance(session: ClientSession): void {
    const op = session.operationTime;
    if (op && (!this.operationTime || op.greaterThan(this.operationTime))) this.operationTime = op;
    const ct = session.clusterTime;
    if (ct && (!this.clusterTime || ct.clusterTime.greaterThan(this.clusterTime.clusterTime))) this.clusterTime = ct;
  }
}
