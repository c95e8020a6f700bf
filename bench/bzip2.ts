/**
 * bzip2 decoders for EPF `.tbz` files, measured in one run so the ratios hold
 * even on a busy machine (absolute MB/s will not).
 *
 *   npx tsx bench/bzip2.ts [megabytes=64]
 *
 * Generates `megabytes` of EPF-like flat-file text (EPF.md: `\x01` fields,
 * `\x02\n` records, multi-line descriptions), tars it as
 * `itunes20250427/application` and compresses it with the system `bzip2 -9`.
 * Then each decoder runs in its own child process (so peak RSS is its own)
 * and reports uncompressed MB/s and peak RSS:
 *   - `bzip2 -d` (system binary; stdin -> stdout), RSS = node + the bzip2 child
 *   - unbzip2-stream (pure JS, streaming)
 *   - extractTbz end to end with each of them (decode + tar-stream + write)
 *   - seek-bzip and @foxglove/wasm-bz2 when BZ_EXTRA_DIR points at a folder
 *     whose node_modules holds them; both decode a whole buffer in memory, not
 *     a stream, so they are for comparison only (unfit for multi-GB files).
 */
import { execFileSync, fork, spawn } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import unbzip2 from 'unbzip2-stream';
import { extractTbz } from '../src/ingest/epf/transfer/extract.js';

type Mode = 'bzip2' | 'unbzip2-stream' | 'extract:bzip2' | 'extract:js' | 'seek-bzip' | 'wasm-bz2';
interface Measure {
  mode: Mode;
  outBytes: number;
  ms: number;
  /** Peak RSS of the node process in MiB. */
  rssMiB: number;
  /** Peak RSS of the bzip2 child in MiB, when there is one. */
  childRssMiB?: number;
}

const MiB = 1024 * 1024;

// ---------- child side: one measurement ----------
if (process.argv[2] === '--one') {
  const mode = process.argv[3] as Mode;
  const archive = process.argv[4]!;
  const started = performance.now();
  let outBytes = 0;
  let childRssMiB: number | undefined;
  const sink = () =>
    new Writable({
      write(chunk: Buffer, _e, done) {
        outBytes += chunk.length;
        done();
      },
    });
  if (mode === 'bzip2') {
    const child = spawn('bzip2', ['-d', '-c'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const poll = setInterval(() => (childRssMiB = Math.max(childRssMiB ?? 0, vmHwmMiB(child.pid!))), 20);
    await Promise.all([pipeline(createReadStream(archive), child.stdin!), pipeline(child.stdout!, sink())]);
    clearInterval(poll);
  } else if (mode === 'unbzip2-stream') {
    await pipeline(createReadStream(archive), unbzip2() as unknown as NodeJS.ReadWriteStream, sink());
  } else if (mode === 'extract:bzip2' || mode === 'extract:js') {
    const destDir = mkdtempSync(path.join(os.tmpdir(), 'bench-bz2-out-'));
    const r = await extractTbz({ archive, destDir, decompressor: mode === 'extract:bzip2' ? 'bzip2' : 'js' });
    outBytes = r.tables.reduce((s, t) => s + t.bytes, 0);
    rmSync(destDir, { recursive: true, force: true });
  } else {
    const req = createRequire(path.join(process.env.BZ_EXTRA_DIR!, 'package.json'));
    const input = readFileSync(archive);
    if (mode === 'seek-bzip') {
      const Bunzip = req('seek-bzip') as { decode(input: Buffer): Buffer };
      outBytes = Bunzip.decode(input).length;
    } else {
      const Bzip2 = req('@foxglove/wasm-bz2') as { init(): Promise<{ decompress(s: Uint8Array, n: number): Uint8Array }> };
      const bz = await Bzip2.init();
      outBytes = bz.decompress(input, Number(process.env.BENCH_OUT_BYTES)).length;
    }
  }
  const result: Measure = {
    mode,
    outBytes,
    ms: performance.now() - started,
    rssMiB: process.resourceUsage().maxRSS / 1024,
    ...(childRssMiB !== undefined ? { childRssMiB } : {}),
  };
  process.send!(result);
  process.exit(0);
}

/** VmHWM (peak resident set) of a live process in MiB, from /proc (Linux); 0 when unavailable. */
function vmHwmMiB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

// ---------- parent side ----------
const megabytes = Number(process.argv[2] ?? 64);
const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-bz2-'));
const folder = path.join(dir, 'itunes20250427');
const flat = path.join(folder, 'application');
const archive = path.join(dir, 'itunes20250427.tbz');

let seed = 42;
/** mulberry32: a deterministic 32-bit PRNG; returns an integer in [0, n). */
function rnd(n: number): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
}
// A 20,000-word vocabulary of pseudo-words (with some non-ASCII letters), Zipf-ish picks:
// compresses about like real app metadata (several x, not tens of x).
const letters = 'abcdefghijklmnopqrstuvwxyzéüñ日本';
const words = Array.from({ length: 20_000 }, () => Array.from({ length: 2 + rnd(9) }, () => letters[rnd(letters.length)]).join(''));
const word = () => words[Math.floor(words.length * (rnd(10_000) / 10_000) ** 3)];
const phrase = (n: number) => Array.from({ length: n }, word).join(' ');
const hex = (n: number) => Array.from({ length: n }, () => rnd(16).toString(16)).join('');

async function generate(): Promise<void> {
  execFileSync('mkdir', ['-p', folder]);
  const out = createWriteStream(flat);
  out.write('#export_date\x01application_id\x01title\x01description\x01artwork_url_large\x01download_size\x02\n#primaryKey:application_id\x02\n');
  let written = 0;
  let id = 280_000_000;
  while (written < megabytes * MiB) {
    let block = '';
    for (let i = 0; i < 500; i++) {
      id += 1 + rnd(50);
      block += `1745712000000\x01${id}\x01${phrase(3)} ${rnd(1000)}\x01${phrase(20 + rnd(60))}\n${phrase(rnd(40))} v${rnd(9)}.${rnd(20)}\x01https://is${rnd(5)}-ssl.mzstatic.com/image/thumb/${hex(32)}/${rnd(1000)}x${rnd(1000)}bb.jpg\x01${rnd(4_000_000_000)}\x02\n`;
    }
    written += Buffer.byteLength(block);
    if (!out.write(block)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  out.end('#recordsWritten:0\x02\n');
  await new Promise<void>((r) => out.once('close', () => r()));
  execFileSync('sh', ['-c', `tar -C "${dir}" -cf - itunes20250427 | bzip2 -9 > "${archive}"`]);
}

function measure(mode: Mode, outBytes: number): Promise<Measure> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--one', mode, archive], {
      env: { ...process.env, BENCH_OUT_BYTES: String(outBytes) },
    });
    child.once('message', (m) => resolve(m as Measure));
    child.once('exit', (code) => code !== 0 && reject(new Error(`${mode} exited with ${code}`)));
  });
}

console.log(`generating ${megabytes} MiB of EPF-like text and compressing it with bzip2 -9 ...`);
const t0 = performance.now();
await generate();
const tarBytes = statSync(flat).size;
const inBytes = statSync(archive).size;
console.log(
  `archive: ${(inBytes / MiB).toFixed(1)} MiB compressed, ${(tarBytes / MiB).toFixed(1)} MiB text (ratio ${(tarBytes / inBytes).toFixed(1)}x), made in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);

const modes: Mode[] = ['bzip2', 'unbzip2-stream', 'extract:bzip2', 'extract:js'];
if (process.env.BZ_EXTRA_DIR) modes.push('seek-bzip', 'wasm-bz2');
// Two rounds, interleaved, best of two per decoder: load from other processes hits all alike.
const bestOf = new Map<Mode, Measure>();
for (let round = 0; round < 2; round++) {
  for (const mode of modes) {
    try {
      const m = await measure(mode, tarBytes + 64 * 1024);
      const prev = bestOf.get(mode);
      bestOf.set(mode, prev && prev.ms <= m.ms ? { ...prev, rssMiB: Math.max(prev.rssMiB, m.rssMiB) } : m);
    } catch (err) {
      console.log(`${mode}: skipped (${(err as Error).message})`);
    }
  }
}
const results = [...bestOf.values()];
const best = Math.max(...results.map((r) => r.outBytes / r.ms));
console.log('\ndecoder          MB/s out  MB/s in  x fastest  peak RSS node (+bzip2)');
for (const r of results) {
  const mbps = r.outBytes / MiB / (r.ms / 1000);
  const inMbps = inBytes / MiB / (r.ms / 1000);
  console.log(
    `${r.mode.padEnd(16)} ${mbps.toFixed(1).padStart(8)} ${inMbps.toFixed(1).padStart(8)} ${(r.outBytes / r.ms / best).toFixed(2).padStart(10)}  ${r.rssMiB.toFixed(0)} MiB${r.childRssMiB !== undefined ? ` (+${r.childRssMiB.toFixed(1)} MiB)` : ''}`,
  );
}
console.log(`\nload average: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores`);
rmSync(dir, { recursive: true, force: true });
