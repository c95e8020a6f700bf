/**
 * Errors of the EPF ingestion example. Every class extends {@link EpfError}
 * (itself a `TaskStatusError`), so callers can branch on the stable `code`
 * (`EPF_*`) or on the class. Helpers of other stages may add classes here;
 * keep one class per failure callers branch on.
 */
import { TaskStatusError } from '../../errors.js';

/** Base class of every EPF error; `code` starts with `EPF_`. */
export class EpfError extends TaskStatusError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * A flat file's header is unusable: no column line, a `#primaryKey:` naming a
 * column the table lacks, a `#dbTypes:` line whose count differs from the
 * columns, or an `#exportMode:` that contradicts the import mode.
 * EPF.md: "Real headers have quirks ... refuse or report such a header clearly".
 */
export class EpfHeaderError extends EpfError {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super('EPF_HEADER', `Bad EPF header in ${file}: ${reason}`);
  }
}

/** The file has no `#recordsWritten:N` trailer in its last bytes (truncated or not an EPF file). */
export class MissingTrailerError extends EpfError {
  constructor(readonly file: string) {
    super('EPF_TRAILER', `No "#recordsWritten:N" trailer at the end of ${file}: the file is truncated or not an EPF flat file`);
  }
}

/** Imported plus rejected rows differ from the trailer's `#recordsWritten`. */
export class RowCountMismatchError extends EpfError {
  constructor(
    readonly file: string,
    readonly recordsWritten: number,
    readonly imported: number,
    readonly rejected: number,
  ) {
    super(
      'EPF_ROW_COUNT',
      `Row count mismatch in ${file}: #recordsWritten says ${recordsWritten}, but ${imported + rejected} rows were read (${imported} imported + ${rejected} rejected)`,
    );
  }
}

/** More rows were rejected than `maxRejectFraction` of `#recordsWritten` allows. */
export class TooManyRejectsError extends EpfError {
  constructor(
    readonly file: string,
    readonly rejected: number,
    readonly recordsWritten: number,
    readonly maxRejectFraction: number,
  ) {
    super(
      'EPF_TOO_MANY_REJECTS',
      `Too many bad rows in ${file}: ${rejected} rejected of ${recordsWritten} (more than ${maxRejectFraction * 100}% allowed by maxRejectFraction); see the epf_rejects collection`,
    );
  }
}

/** An incremental export arrived for a table that has no published full import to update. */
export class NoLiveTableError extends EpfError {
  constructor(readonly table: string) {
    super('EPF_NO_LIVE_TABLE', `Incremental import for table "${table}", but no full import of it was ever published`);
  }
}

/** `publishStaging` found neither the staging collection nor a finished switch to that export. */
export class StagingMissingError extends EpfError {
  constructor(
    readonly table: string,
    readonly staging: string,
  ) {
    super('EPF_STAGING_MISSING', `Cannot publish table "${table}": staging collection "${staging}" does not exist and that export was never switched in`);
  }
}
