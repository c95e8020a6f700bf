// A schedule run as a service, in plain JavaScript: one container per hourly
// slot, claimed once across every process that runs this file. SIGINT
// (Ctrl-C) and SIGTERM (systemd, docker stop) stop it gracefully: running
// tasks are released for another scheduler, the connection is closed, and
// the process exits 0.
// Run after `npm run build`:  MONGODB_URI=mongodb://127.0.0.1:27017/hourly node examples/hourly-schedule.mjs
import mongoose from 'mongoose';
import { defineContainer, defineSchedule, Scheduler } from 'persistent-task-status';

const connection = await mongoose.createConnection(process.env.MONGODB_URI ?? 'mongodb://127.0.0.1:27017/hourly-example').asPromise();

const hourly = defineSchedule({
  name: 'example-hourly',
  cron: '0 * * * *',
  timezone: 'UTC',
  overlap: 'skip',
  catchUp: 'latest',
  container: (slot) =>
    defineContainer(`example-${slot.toISOString().slice(0, 16)}Z`)
      .task('list', async () => ['a', 'b'])
      .task('ingest', { dependsOn: ['list'] }, async (ctx) => ctx.deps.list.length),
});

const scheduler = await Scheduler.create({ connection, schedules: [hourly] });
scheduler.on('slot:completed', (e) => console.log(`${e.container}: ${e.status}`));
let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: stopping`);
  await scheduler.stop(); // graceful: its runners release their tasks
  await connection.close(); // nothing else keeps the process alive
  console.log('stopped');
}
// Listening before saying so: a signal sent on that line is then always a graceful stop.
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
await scheduler.start();
console.log('scheduler started; SIGINT or SIGTERM to stop');
