// bench/soak (issue 15): `clipstream serve` for a long time under readers that come and go, with a small cache that
// really evicts; the server's RSS, V8 heap and open fds sampled; prints the slope of each over the run's second
// half (after warm-up) and whether it is flat.
// Usage: node bench/soak/run.mjs [--minutes 60] [--readers 6] [--count 3000] [--cache 4MB] [--sample-seconds 10]
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const minutes = Number(arg('minutes', 60));
const readers = Number(arg('readers', 6));
const count = Number(arg('count', 3000));
const cacheBytes = arg('cache', '4MB');
const sampleSeconds = Number(arg('sample-seconds', 10));
const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

function start(args, ready) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  return new Promise((resolve, reject) => {
    const onLine = (data) => {
      for (const line of data.toString().split('\n')) {
        if (line) lines.push(line);
        const m = ready.exec(line);
        if (m) resolve({ child, match: m, lines });
      }
    };
    child.stdout.on('data', onLine);
    child.stderr.on('data', (d) => lines.push(...d.toString().split('\n').filter(Boolean)));
    child.on('exit', (code) => reject(new Error(`${args[0]} exited ${code}:\n${lines.slice(-20).join('\n')}`)));
  });
}

const dir = await mkdtemp(join(tmpdir(), 'clipstream-soak-'));
console.log(
  `bench/soak: ${minutes} min, ${readers} readers, demo world of ${count} images, cache ${cacheBytes}, in ${dir}`,
);
const world = await start(['demo', '--world', join(dir, 'world'), '--count', String(count)], /^demo world ready:/);
const spec = join(dir, 'soak.yaml');
await writeFile(
  spec,
  [
    `index: ${join(dir, 'world', 'index')}`,
    `model: ${join(dir, 'world', 'model')}`,
    'queries:',
    '  - {name: red, text: red, count: 300, min_similarity: 0.9}',
    '  - {name: blue, text: blue, count: 200, min_similarity: 0.9}',
    'seed: 0',
    'image: {size: 128, resize_mode: center_crop, encode_format: jpg, encode_quality: 90}',
    'fetch: {concurrency: 64, timeout: 5, retries: 1, allow_private_networks: true}',
    `cache: {dir: ${join(dir, 'cache')}, max_bytes: ${cacheBytes}}`,
    '',
  ].join('\n'),
);
const server = await start(['serve', '--spec', `soak=${spec}`, '--port', '0'], /listening on (http:\/\/\S+?) /);
const base = server.match[1];
const pid = server.child.pid;

let samplesRead = 0;
let disconnects = 0;
let errors = 0;
let stop = false;

/** A reader: a random partition of a random P, reads a random number of bytes (sometimes all), hangs up. */
async function reader(id) {
  let epoch = 0;
  while (!stop) {
    const P = 1 + Math.floor(Math.random() * 4);
    const p = Math.floor(Math.random() * P);
    const budget = Math.random() < 0.3 ? Infinity : Math.floor(Math.random() * 2_000_000);
    const controller = new AbortController();
    try {
      const res = await request(`${base}/streams/soak/${p}.tar?partitions=${P}&epoch=${epoch++ % 50}`, {
        signal: controller.signal,
      });
      let bytes = 0;
      for await (const chunk of res.body) {
        bytes += chunk.length;
        samplesRead += 1 / 8; // ~8 chunks per 128 px sample: a rough count, for the summary only
        if (bytes > budget || stop) {
          controller.abort();
          disconnects++;
          break;
        }
      }
    } catch (err) {
      if (err.name !== 'AbortError') errors++;
    }
    await sleep(50 + Math.random() * 200 + id);
  }
}

function sample() {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
  const fds = readdirSync(`/proc/${pid}/fd`).length;
  return { rssMb: rssKb / 1024, fds };
}

async function heapMb() {
  const text = await (await request(`${base}/metrics`)).body.text();
  const used = /nodejs_heap_size_used_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)/.exec(text);
  return used ? Number(used[1]) / 1024 ** 2 : NaN;
}

const points = [];
const started = Date.now();
const readersDone = Array.from({ length: readers }, (_, i) => reader(i));
while (Date.now() - started < minutes * 60_000) {
  await sleep(sampleSeconds * 1000);
  const t = (Date.now() - started) / 60_000;
  const point = { t, ...sample(), heapMb: await heapMb() };
  points.push(point);
  console.log(
    `${t.toFixed(1)} min: RSS ${point.rssMb.toFixed(1)} MB, heap ${point.heapMb.toFixed(1)} MB, fds ${point.fds}, ~${Math.round(samplesRead)} samples read, ${disconnects} disconnects, ${errors} errors`,
  );
}
stop = true;
await Promise.all(readersDone);
const stats = await (await request(`${base}/streams/soak/stats`)).body.json();
server.child.kill('SIGTERM');
world.child.kill('SIGTERM');

/** Least-squares slope of y over t (per minute). */
function slope(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
const second = points.slice(Math.floor(points.length / 2));
const ts = second.map((p) => p.t);
const rssSlope = slope(
  ts,
  second.map((p) => p.rssMb),
);
// The heap saws up and down with each GC: what a leak raises is its floor, the lowest sample of each 5 minutes.
const buckets = new Map();
for (const p of second) {
  const b = buckets.get(Math.floor(p.t / 5)) ?? [];
  b.push(p);
  buckets.set(Math.floor(p.t / 5), b);
}
// whole buckets only: the run's last, cut short, has few samples and a floor that says nothing
const fullSize = Math.max(...[...buckets.values()].map((b) => b.length));
const floors = [...buckets.values()]
  .filter((b) => b.length >= 0.8 * fullSize)
  .map((b) => b.reduce((lo, p) => (p.heapMb < lo.heapMb ? p : lo)));
const heapSlope =
  floors.length > 1
    ? slope(
        floors.map((f) => f.t),
        floors.map((f) => f.heapMb),
      )
    : 0;
const fdSlope = slope(
  ts,
  second.map((p) => p.fds),
);
const first = points[0];
const last = points.at(-1);
const served = `delivered ${stats.delivered}, attempts ${stats.attempts}, cache ${JSON.stringify(stats.cache)}`;
console.log(`\nserver over ${minutes} min: ${served}; readers hung up ${disconnects} times, ${errors} errors`);
const peak = Math.max(...points.map((p) => p.rssMb));
console.log(
  `RSS ${first.rssMb.toFixed(0)} → ${last.rssMb.toFixed(0)} MB (peak ${peak.toFixed(0)}), slope over the second half ${rssSlope.toFixed(2)} MB/min`,
);
const heapFloors = floors.map((f) => f.heapMb.toFixed(0)).join(', ');
console.log(`heap floors per 5 min over the second half: ${heapFloors} MB, slope ${heapSlope.toFixed(2)} MB/min`);
console.log(
  `fds ${first.fds} → ${last.fds} (max ${Math.max(...points.map((p) => p.fds))}), slope ${fdSlope.toFixed(2)}/min`,
);
const flat = Math.abs(rssSlope) < 0.5 && Math.abs(heapSlope) < 0.2 && Math.abs(fdSlope) < 1;
console.log(
  `flat (|RSS slope| < 0.5 MB/min, |heap floor slope| < 0.2 MB/min, |fds slope| < 1/min): ${flat ? 'yes' : 'NO'}`,
);
process.exit(0);
