/**
 * A poisoned batch: beside the tasks of a `flat` container, a task `poison`
 * returns a value the server refuses for its document alone
 * ({ matrix: [[1, 2], [3, 4]] }: nested arrays, FerretDB v1). Handlers end
 * on shared 200 ms boundaries, so outcomes of several tasks go to the server
 * in one insert. Two runner processes. No innocent task may run twice, fail,
 * or be held back; `poison` runs once and fails with UnstorableValueError
 * where the server refuses its value (it succeeds where the server stores it).
 */
import { it } from 'vitest';
import { databasePerFile } from '../support/database.js';
import { killChildrenAfterEach } from '../support/child.js';
import { runPoisoned } from './support/poison.js';

const db = databasePerFile();
killChildrenAfterEach();

it('poisoned batch: a value refused per document beside innocent tasks ending in the same turn', async () => {
  await runPoisoned(db(), 'poisoned-batch', 'nested');
});
