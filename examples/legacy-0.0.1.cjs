// The 0.0.1 API, unchanged: node-style callbacks over mongoose's default connection.
// Run after `npm run build`:  MONGODB_URI=mongodb://127.0.0.1:27017/legacy node examples/legacy-0.0.1.cjs
'use strict';
const mongoose = require('mongoose');
const client = require('persistent-task-status').client;

mongoose.connect(process.env.MONGODB_URI || 'mongodb://127.0.0.1:27017/legacy-example');

function fail(err) {
  console.error(err);
  process.exit(1);
}

client.getOrCreateTaskContainer('nightly-import', function (err, container, isNew) {
  if (err) return fail(err);
  console.log('container %s (new: %s)', container.name, isNew);
  if (!isNew) return work(container);
  container.addTask('download', { taskData: { url: 'https://example.com/data.csv' } }, function (err) {
    if (err) return fail(err);
    container.addTask('import', { maxRetries: 5, delayBetweenRetriesInSeconds: 10 }, function (err) {
      if (err) return fail(err);
      work(container);
    });
  });
});

// Take tasks one by one until none is left, reporting progress on the way.
function work(container) {
  container.getNextTask(function (err, task) {
    if (err) return fail(err);
    if (!task) return finish(container);
    console.log('working on %s (invocation %d)', task.name(), task.invokeCount());
    // As in 0.0.1, task fields are getter functions (task.name() too); container.name is a string.
    // A failure is recorded as { isComplete: true, hasFailed: true }.
    container.updateTask(task.name(), { percentageComplete: 50, statusText: 'halfway' }, function (err) {
      if (err) return fail(err);
      container.updateTask(task.name(), { isComplete: true, processingData: { rows: 42 } }, function (err, done) {
        if (err) return fail(err);
        console.log('%s complete after %d ms', done.name(), done.taskDurationInMilliseconds());
        work(container);
      });
    });
  });
}

function finish(container) {
  console.log('all complete: %s', container.isComplete());
  client.deleteTaskContainer(container.name, function (err, name) {
    if (err) return fail(err);
    console.log('deleted %s', name);
    mongoose.disconnect();
  });
}
