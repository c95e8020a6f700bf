/** Which server backs an {@link EmbeddedMongo}. */
export type EmbeddedMongoKind =
  /** `MONGODB_URI` was set: nothing was started. */
  | 'external'
  /** A real mongod, started by mongodb-memory-server. */
  | 'mongodb-memory-server'
  /** FerretDB v1 (the MongoDB wire protocol over SQLite), built from Go. */
  | 'ferretdb';

/** A running (or borrowed) MongoDB-compatible server. */
export interface EmbeddedMongo {
  /** Connection string without a database name, e.g. `mongodb://127.0.0.1:27018/`. */
  uri: string;
  kind: EmbeddedMongoKind;
  /** Absolute path of the data folder, or undefined for temporary data and `external`. */
  dataDir: string | undefined;
  /**
   * Stops the server; safe to call more than once. A no-op for `external` and
   * for a server that another process started on the same data folder.
   */
  stop(): Promise<void>;
}
