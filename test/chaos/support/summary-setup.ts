/**
 * Global setup of the chaos suite (after test/support/global-setup.ts): gives
 * the scenarios a file to append their summary lines to, and prints them all
 * together at the end of the run, one line per scenario.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

let file: string | undefined;

export function setup(): void {
  if (process.env.PTS_CHAOS_SUMMARY) return; // the caller keeps its own file
  file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pts-chaos-summary-')), 'summary.txt');
  fs.writeFileSync(file, '');
  process.env.PTS_CHAOS_SUMMARY = file;
}

export function teardown(): void {
  const own = file;
  const lines = fs.existsSync(process.env.PTS_CHAOS_SUMMARY ?? '') ? fs.readFileSync(process.env.PTS_CHAOS_SUMMARY!, 'utf8') : '';
  process.stdout.write(`\nChaos summary (one line per scenario):\n${lines || '(no scenario reported)\n'}`);
  if (own) fs.rmSync(path.dirname(own), { recursive: true, force: true });
}
