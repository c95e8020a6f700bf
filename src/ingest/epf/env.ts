/**
 * What the EPF handlers need from the process that runs them: the database,
 * the feed, the ledger, a work folder and a progress sink.
 */
import type { Connection } from 'mongoose';
import type { Ledger } from '../../index.js';
import type { EpfFeed } from './feed/client.js';
import type { PlannedFile } from './plan.js';

/** Phases a file goes through, as shown to people. */
export type FilePhase = 'download' | 'extract' | 'import' | 'done';

/** Receives live progress from the handlers running in this process. */
export interface EpfReporter {
  /** The slot's plan: files to ingest and files held back. */
  planned(files: PlannedFile[], waiting: Array<{ name: string; reason: string }>): void;
  /**
   * Progress of one file: bytes for download and extract, rows for import.
   * @param done bytes or rows so far
   * @param total bytes or rows in all, when known
   * @param detail e.g. the table being imported
   * @param fraction share of the phase done (0–1) when `total` does not say it (imports: bytes of the flat files read)
   */
  file(id: string, phase: FilePhase, done: number, total?: number, detail?: string, fraction?: number): void;
  /** Something the user should see once, e.g. a header quirk worked around. */
  warn?(message: string): void;
}

/** A reporter that drops everything (tests, library use). */
export const silentReporter: EpfReporter = { planned: () => {}, file: () => {} };

/** The environment of one EPF job. */
export interface EpfEnv {
  connection: Connection;
  feed: EpfFeed;
  ledger: Ledger;
  /** Where downloads and extracted tables go; kept across runs so downloads resume. */
  workDir: string;
  /** Credentials sent with every download (HTTP Basic). */
  auth?: { username: string; password: string };
  /** Collection prefix of the EPF tables. @defaultValue 'epf_' */
  prefix: string;
  /** Rows per batch: one checkpoint after each committed batch. @defaultValue 2000 */
  batchSize: number;
  /**
   * How incrementals write (load/incremental.ts): `auto` picks `upsert` where
   * the server serves `{ _id, export_date }` by index (MongoDB) and
   * `generation` elsewhere (FerretDB v1: a merged copy switched in);
   * `delete-insert` is the older batch replace (deletes only rows not newer
   * than the incoming `export_date`; a reader may miss a row for a moment).
   * @defaultValue 'auto'
   */
  incrementalWrite: 'auto' | 'upsert' | 'generation' | 'delete-insert';
  /** Share (0-1) of rejected rows above which a table fails. @defaultValue 0.01 */
  maxRejectFraction: number;
  /** Bytes between two download checkpoints (the most a crash makes us fetch again). @defaultValue 8 MiB */
  downloadCheckpointBytes?: number;
  /**
   * How long a file's ledger claim lives after its last renewal, in ms: a
   * slot whose runners all died frees its files for another slot this long
   * after (src/ingest/epf/file-claim.ts). @defaultValue 300000 (5 minutes)
   */
  claimLeaseMs?: number;
  /** Keep archives and extracted files after publishing. @defaultValue false */
  keepFiles: boolean;
  reporter: EpfReporter;
}
