import { TaskStatusError } from '../errors.js';

/**
 * A 0.0.1 `updateTask` (or `addTask` with state fields) could not write the
 * task's state because other writers kept moving it; its state was not changed.
 */
export class ConcurrentUpdateError extends TaskStatusError {
  constructor(
    readonly container: string,
    readonly task: string,
    readonly attempts: number,
  ) {
    super(
      'PTS_CONCURRENT_UPDATE',
      `Task "${task}" of container "${container}" kept changing while it was being updated ` +
        `(${attempts} attempts); its state was not changed, try again`,
    );
  }
}
