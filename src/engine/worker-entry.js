// Runs a task handler exported by a user's module inside a worker thread of
// the pool that `runInWorker` (src/engine/run-in-worker.ts) starts. Plain
// JavaScript, shipped as is: a worker thread loads it without any build step.
// Progress and checkpoints are posted to the main thread, which writes them
// as the attempt's own (throttled, fenced); the handler's return value comes
// back by structured clone.

/** Runs `exportName` of `module` with a context of plain values and the port to the attempt. */
export default async function runTask({ module, exportName, context, port }) {
  const loaded = await import(module);
  const handler = loaded[exportName];
  if (typeof handler !== 'function') {
    throw new TypeError(`runInWorker: ${module} has no exported function "${exportName}"`);
  }
  // Aborted when the attempt asks nicely (an async handler sees it); a handler
  // busy with synchronous work is stopped by ending its thread instead.
  const controller = new AbortController();
  port.on('message', (message) => {
    if (message?.kind === 'abort') controller.abort(new Error(message.reason));
  });
  const ctx = {
    ...context,
    signal: controller.signal,
    progress(fraction, statusText) {
      port.postMessage({ kind: 'progress', fraction, statusText });
      return Promise.resolve();
    },
    checkpoint(state) {
      port.postMessage({ kind: 'checkpoint', state });
      return Promise.resolve();
    },
    addTasks() {
      return Promise.reject(new Error('ctx.addTasks is not available to a handler run with runInWorker(); add tasks from the main thread'));
    },
  };
  try {
    return await handler(ctx);
  } finally {
    port.close();
  }
}
