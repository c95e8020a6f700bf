import { foldInto, initialTaskState } from './fold.js';
import type { Transition } from './transition.js';
import type { TaskState } from './types.js';

/**
 * Folds a container's log while it streams in, entry by entry, so a reader
 * holds one state per task instead of every entry. Entries may come in any
 * order: one that does not follow its task's state waits until the entries
 * before it came, and {@link finish} folds what still waits (a gap) in token
 * order. The result is the fold of each task's entries sorted by token,
 * exactly as `foldTransitions` of the whole sorted log gives it.
 */
export class StreamingFold {
  private readonly states = new Map<string, TaskState>();
  /** Entries that came before the one their task's state needs next, sorted by token. */
  private readonly waiting = new Map<string, Transition[]>();
  /** Positions of each task's `succeeded` entries (what makes tasks it staged visible). */
  private readonly successes = new Map<string, number[]>();
  /** Entries folded or waiting. */
  entries = 0;

  /** Folds one entry (or keeps it until the entries before it came). */
  add(entry: Transition): void {
    this.entries += 1;
    if (entry.kind === 'succeeded') {
      const list = this.successes.get(entry.task);
      if (list) list.push(entry.token);
      else this.successes.set(entry.task, [entry.token]);
    }
    let s = this.states.get(entry.task);
    if (!s) {
      s = initialTaskState();
      this.states.set(entry.task, s);
    }
    if (entry.token !== s.token + 1) {
      const list = this.waiting.get(entry.task) ?? [];
      list.push(entry);
      list.sort((a, b) => a.token - b.token);
      this.waiting.set(entry.task, list);
      return;
    }
    foldInto(s, [entry]);
    const list = this.waiting.get(entry.task);
    if (!list) return;
    // Entries that waited for this one, as far as they follow on.
    let i = 0;
    while (i < list.length && list[i]!.token === s.token + 1) foldInto(s, [list[i++]!]);
    if (i === list.length) this.waiting.delete(entry.task);
    else if (i > 0) list.splice(0, i);
  }

  /** Folds what still waits behind a gap, in token order (a missing entry is skipped, as a fold of the sorted log skips it). */
  finish(): void {
    for (const [task, list] of this.waiting) {
      const s = this.states.get(task)!;
      // Every waiting entry is past the state's position (the state moves on
      // only through the entry right after it), so the sorted fold goes on here.
      foldInto(s, list);
    }
    this.waiting.clear();
  }

  /** The task's state folded from its entries (a fresh initial state for a task with none). */
  stateOf(task: string): TaskState {
    return this.states.get(task) ?? initialTaskState();
  }

  /** The task's entry at `token` is a success. */
  succeededAt(task: string, token: number): boolean {
    return this.successes.get(task)?.includes(token) ?? false;
  }
}
