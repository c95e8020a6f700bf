/**
 * Keeps the process alive until SIGINT or SIGTERM, then stops `server` and
 * exits (0, or 1 if stopping failed). Shared by `npm run db` and
 * `npm run test:server`.
 */
export function serveUntilSignal(server: { stop(): Promise<void> }): void {
  const keepAlive = setInterval(() => {}, 1 << 30);
  let stopping = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      clearInterval(keepAlive);
      server.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          console.error(err);
          process.exit(1);
        },
      );
    });
  }
}
