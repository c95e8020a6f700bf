import type { Command } from 'commander';
import { UnknownScheduleError } from '../../errors.js';
import { MongoScheduleStore } from '../../store/mongo/schedule-store.js';
import { serverTime } from '../../store/mongo/server-clock.js';
import { readScheduleReports, type ScheduleReport } from '../../schedule/report.js';
import { globalOptions, printJson, type CliContext } from '../context.js';
import { CliError, ExitCode, usageError } from '../errors.js';
import { println } from '../io.js';
import { clean, formatDuration } from '../render/format.js';
import { withSession } from '../session.js';

/** Registers `pts schedules` and `pts schedules trigger <name>`. */
export function registerSchedules(program: Command, ctx: CliContext): void {
  const schedules = program
    .command('schedules')
    .description('list schedules: cron, policies, next firing and last slots')
    .option('--json', 'print a JSON array of schedule reports')
    .option('--slots <n>', 'how many of the last slots to show per schedule', '5')
    .action(async (opts: { json?: boolean; slots: string }, command: Command) => {
      const count = Number(opts.slots);
      if (!/^\d+$/.test(opts.slots) || count > 1000) throw usageError(`invalid --slots "${opts.slots}": expected 0 to 1000`);
      const { reports, now } = await withSession(globalOptions(command), ctx.io, async ({ connection }) => {
        const store = await MongoScheduleStore.create(connection, { collectionPrefix: globalOptions(command).prefix });
        const now = (await serverTime(connection.db)) ?? new Date();
        return { reports: await readScheduleReports(store, now, count), now };
      });
      if (opts.json) return printJson(ctx.io, reports);
      if (reports.length === 0) return println(ctx.io, `No schedules (collection prefix "${globalOptions(command).prefix}").`);
      for (const r of reports) for (const line of renderSchedule(r, now)) println(ctx.io, line);
    });

  schedules
    .command('trigger <name>')
    .description('ask a running scheduler to run a slot of <name> now (the current slot if nobody ran it, else a manual slot)')
    .option('--wait <ms>', 'how long to wait for a running scheduler to serve the request', '15000')
    .action(async (name: string, opts: { wait: string }, command: Command) => {
      const waitMs = Number(opts.wait);
      if (!/^\d+$/.test(opts.wait)) throw usageError(`invalid --wait "${opts.wait}": expected milliseconds`);
      const options = globalOptions(command);
      const served = await withSession(options, ctx.io, async ({ connection }) => {
        const store = await MongoScheduleStore.create(connection, { collectionPrefix: options.prefix });
        const requestedAt = (await serverTime(connection.db)) ?? new Date();
        const request = { requestedAt, requestedBy: `pts-cli:${process.pid}` };
        if (!(await store.requestTrigger(name, request))) {
          throw new UnknownScheduleError(name, 'no scheduler has run it in this database (see `pts schedules`)');
        }
        const deadline = performance.now() + waitMs;
        for (;;) {
          const head = await store.getHead(name);
          if (head?.trigger?.requestedAt.getTime() !== requestedAt.getTime()) break; // served (or replaced)
          if (performance.now() >= deadline) return null;
          await new Promise((r) => setTimeout(r, 200));
        }
        const slots = await store.listSlots(name);
        return slots.filter((s) => s.manual && s.claimedAt.getTime() >= requestedAt.getTime() - 60_000).at(-1) ?? undefined;
      });
      if (served === null) {
        throw new CliError(
          `requested a slot of "${name}", but no running scheduler served it within ${formatDuration(waitMs)}; the request stays, and the next scheduler to tick serves it`,
          ExitCode.ERROR,
        );
      }
      if (!served) return println(ctx.io, `Triggered "${name}": a scheduler served the request (see \`pts schedules\`).`);
      println(ctx.io, `Triggered "${name}": slot ${served.slot.toISOString()}, container ${clean(served.container)}, ${served.state}${served.reason ? ` (${clean(served.reason)})` : ''}`);
    });
}

function renderSchedule(r: ScheduleReport, now: Date): string[] {
  const cron = r.cron ? `${r.cron} (${r.timezone})` : '(definition not recorded)';
  const policies = r.overlap ? `, overlap ${r.overlap}, catch-up ${r.catchUp}` : '';
  const next = r.nextFiring ? `next ${r.nextFiring.toISOString()} (in ${formatDuration(r.nextFiring.getTime() - now.getTime())})` : 'no next firing';
  const lines = [`${clean(r.schedule)}  ${clean(cron)}${policies}  ${next}${r.pendingTrigger ? '  trigger pending' : ''}`];
  for (const s of r.lastSlots) {
    lines.push(`  ${s.slot.toISOString()}  ${s.state.padEnd(10)}  ${clean(s.container)}${s.manual ? '  (manual)' : ''}${s.reason ? `  ${clean(s.reason)}` : ''}`);
  }
  return lines;
}
