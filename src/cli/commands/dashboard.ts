import type { Command } from 'commander';
import { basicAuth, type DashboardAuth } from '../../observe/dashboard/index.js';
import { isLoopback, serveDashboard } from '../../observe/dashboard/serve.js';
import { databaseMetrics } from '../../observe/database-metrics.js';
import { MongoScheduleStore } from '../../store/mongo/schedule-store.js';
import { globalOptions, type CliContext } from '../context.js';
import { describeError, usageError } from '../errors.js';
import { println } from '../io.js';
import { withSession } from '../session.js';

interface DashboardFlags {
  port: string;
  host: string;
  readOnly?: boolean;
  basicAuth?: string;
}

/** Registers `pts dashboard`. */
export function registerDashboard(program: Command, ctx: CliContext): void {
  program
    .command('dashboard')
    .description('serve the web dashboard (containers, graph, schedules, runners, live updates) until Ctrl-C or SIGTERM')
    .option('--port <n>', 'TCP port (0: any free port)', '8700')
    .option('--host <host>', 'address to listen on; other than localhost only with --basic-auth', '127.0.0.1')
    .option('--read-only', 'hide and refuse the retry and cancel actions')
    .option('--basic-auth <user:pass>', 'require HTTP Basic authentication (env PTS_DASHBOARD_AUTH)')
    .action(async (flags: DashboardFlags, command: Command) => {
      const port = Number(flags.port);
      if (!/^\d+$/.test(flags.port) || port > 65535) throw usageError(`invalid --port "${flags.port}": expected 0 to 65535`);
      const credentials = flags.basicAuth ?? ctx.io.env.PTS_DASHBOARD_AUTH;
      let auth: DashboardAuth | undefined;
      if (credentials !== undefined) {
        const colon = credentials.indexOf(':');
        if (colon < 1 || colon === credentials.length - 1) throw usageError('invalid --basic-auth: expected user:password');
        auth = basicAuth(credentials.slice(0, colon), credentials.slice(colon + 1));
      }
      if (!auth && !isLoopback(flags.host)) {
        throw usageError(`refusing to listen on ${flags.host} without --basic-auth (the dashboard can retry and cancel containers)`);
      }
      const options = globalOptions(command);
      await withSession(options, ctx.io, async ({ connection, store }) => {
        const schedules = await MongoScheduleStore.create(connection, { collectionPrefix: options.prefix });
        const metrics = databaseMetrics(store);
        const dashboard = await serveDashboard({
          store,
          schedules,
          readOnly: flags.readOnly ?? false,
          auth,
          host: flags.host,
          port,
          metrics: () => metrics.metrics(),
          onError: (error) => ctx.io.stderr.write(`pts dashboard: ${describeError(error)}\n`),
        });
        println(ctx.io, `Dashboard: ${dashboard.url}${flags.readOnly ? ' (read-only)' : ''}`);
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        await dashboard.close();
        println(ctx.io, 'Dashboard stopped.');
      });
    });
}
