/**
 * A connection-closing value beside an innocent task: `poison` returns
 * { ratio: NaN }, on which FerretDB v1 closes the connection (every
 * operation in flight on it fails). Handlers end on shared 200 ms
 * boundaries, so outcomes go to the server together. Two runner processes.
 * No innocent task may run twice or wait for a lease to run out; `poison`
 * runs once and fails with UnstorableValueError where the server refuses NaN.
 */
import { it } from 'vitest';
import { databasePerFile } from '../support/database.js';
import { killChildrenAfterEach } from '../support/child.js';
import { runPoisoned } from './support/poison.js';

const db = databasePerFile();
killChildrenAfterEach();

it('closing value: NaN beside innocent tasks ending in the same turn', async () => {
  await runPoisoned(db(), 'closing-value', 'nan');
});
