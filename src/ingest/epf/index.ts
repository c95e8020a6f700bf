/**
 * `persistent-task-status/epf`: ingestion of Apple's Enterprise Partner Feed
 * (EPF) into MongoDB, as a library. Each part is usable alone:
 *
 * - the job: {@link epfContainer} (one slot's container), {@link epfSchedule}
 *   (the hourly schedule), {@link EpfEnv} (what the handlers need);
 * - the feed client: {@link EpfFeed} (listings, v5 and v3 layouts, `.md5`);
 * - transfer: {@link downloadResumable}, {@link verifyMd5}, {@link extractTbz};
 * - the flat-file parser: {@link readHeader}, {@link readRecords}, {@link makeConverter};
 * - the importer: {@link importTable}, {@link publishStaging}, {@link liveCollectionName};
 * - a local stand-in feed for trials and tests: {@link startFixtureFeed}.
 *
 * The command `pts epf` (src/cli/epf) wires these together.
 */
export { epfContainer, epfContainerName, EPF_RUNNER_LIMITS } from './job.js';
export { releaseSlotClaims, DEFAULT_CLAIM_LEASE_MS } from './file-claim.js';
export { epfSchedule, EPF_SCHEDULE_NAME, type EpfScheduleOptions } from './schedule.js';
export { silentReporter, type EpfEnv, type EpfReporter, type FilePhase } from './env.js';
export { summarize, type EpfSummary } from './summary.js';
export type { DiscoverOutput, DownloadOutput, ExtractOutput, ImportOutput } from './steps.js';
export type { PlannedFile } from './plan.js';

export { APPLE_EPF_V5_URL, EpfFeed, type EpfFeedOptions, type EpfLayout, type EpfPlan, type FeedFile } from './feed/client.js';
export { parseAutoindex, type ListingEntry } from './feed/listing.js';
export { EpfAuthError, EpfFeedError, EpfHttpError, EpfListingError, EpfNetworkError, EpfTimeoutError } from './feed/errors.js';

export { downloadResumable, type DownloadCheckpoint, type DownloadOptions, type DownloadResult } from './transfer/download.js';
export { parseBsdMd5, verifyMd5 } from './transfer/md5.js';
export { extractTbz, type ExtractedTable, type ExtractOptions, type ExtractResult } from './transfer/extract.js';
export {
  CorruptArchiveError,
  DownloadAuthError,
  DownloadHttpError,
  ExtractStalledError,
  Md5FormatError,
  Md5MismatchError,
  TransientDownloadError,
} from './transfer/errors.js';

export { readHeader, readRecordsWritten, type EpfHeader } from './flatfile/header.js';
export { readRecords, type RawRecord } from './flatfile/records.js';
export { makeConverter, type ConvertResult, type DecimalMode } from './flatfile/convert.js';

export { importTable, type ImportCheckpoint, type ImportResult, type ImportTableOptions } from './load/import-table.js';
export { DEFAULT_PREFIX, liveCollectionName, pointerCollectionName, publishStaging, type TablePointer } from './load/switch.js';
export {
  EpfError,
  EpfHeaderError,
  MissingTrailerError,
  NoLiveTableError,
  RowCountMismatchError,
  StagingMissingError,
  TooManyRejectsError,
} from './errors.js';

export { startFixtureFeed, FIXTURE_PASSWORD, FIXTURE_USERNAME, type FixtureFeed, type FixtureFeedOptions } from './fixture/server.js';
