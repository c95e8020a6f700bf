import { EventEmitter } from 'eventemitter3';

/** Payload of an error event: what went wrong, and where. */
export interface ErrorEventPayload {
  error: Error;
  context: string;
}

/**
 * A typed emitter whose `emit` never throws: a throwing (or rejecting)
 * listener is reported on the map's error event and the other listeners still
 * run. Without a listener of its own, the error event goes to
 * `process.emitWarning` (never an unhandled 'error' that crashes the host).
 * Shared by the runner's and the scheduler's events.
 */
export class SafeEvents<M extends { [K in E]: ErrorEventPayload }, E extends keyof M & string> {
  private readonly ee = new EventEmitter();

  /**
   * @param errorEvent the event that carries errors, e.g. `runner:error`
   * @param label prefix of the process warnings, e.g. `persistent-task-status`
   */
  constructor(
    private readonly errorEvent: E,
    private readonly label: string,
  ) {}

  /** Adds a listener. */
  on<K extends keyof M & string>(event: K, listener: (payload: M[K]) => void): this {
    this.ee.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Adds a listener that runs once. */
  once<K extends keyof M & string>(event: K, listener: (payload: M[K]) => void): this {
    this.ee.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Removes a listener. */
  off<K extends keyof M & string>(event: K, listener: (payload: M[K]) => void): this {
    this.ee.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Calls each listener in turn, isolating failures. */
  emit<K extends keyof M & string>(event: K, payload: M[K]): void {
    const listeners = this.ee.listeners(event) as Array<(payload: M[K]) => unknown>;
    if ((event as string) === this.errorEvent && listeners.length === 0) {
      const p = payload as unknown as ErrorEventPayload;
      process.emitWarning(`${this.label}: ${p.context}: ${p.error.stack ?? p.error.message}`);
      return;
    }
    for (const listener of listeners) {
      try {
        const result = listener(payload);
        if (result && typeof (result as Promise<unknown>).then === 'function') {
          (result as Promise<unknown>).then(undefined, (error: unknown) => this.reportListenerError(event, error));
        }
      } catch (error) {
        this.reportListenerError(event, error);
      }
    }
  }

  private reportListenerError(event: string, error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    if (event === this.errorEvent) {
      process.emitWarning(`persistent-task-status: a ${this.errorEvent} listener threw: ${err.message}`);
      return;
    }
    this.emit(this.errorEvent, { error: err, context: `listener of "${event}" threw` } as M[E]);
  }
}
