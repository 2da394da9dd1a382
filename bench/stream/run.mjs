// bench/stream (issue 4): the streaming loader against its targets, each part measured in this run.
//   1. throughput: `clipstream stream SPEC --output-folder` ÷ `clipstream download`, same urls, server, options,
//      fetch concurrency and number of successful samples (target ≥ 0.95)
//   2. time to first sample: fresh `clipstream stream SPEC --output -` against a 1 M-row index (target ≤ 1 s)
//   3. memory: RSS of the stream process over 100 k samples (target: flat, ≤ 1 GB)
// Usage: node bench/stream/run.mjs [--only throughput,ttfs,rss]
//   throughput: [--count 5000] [--concurrency 256] [--processes 2] [--rounds 2] [--retries 0] [--diagnose]
//   ttfs:       [--rows 1000000] [--dim 512] [--ttfs-count 10000] [--min-similarity -1] [--trials 3] [--breakdown-trials 1] [--no-latency]
//               [--index-type auto|ivf_hnsw_sq] (the index type of the 1 M-row index, each cached apart)
//   rss:        [--rss-count 100000] [--rss-mode stdout|folder]
//   both cached worlds: [--port 47611] (their urls hold the image server's port) [--rebuild]
import { availableParallelism, cpus, totalmem } from 'node:os';
import { arg } from './common.mjs';
import { rss } from './rss.mjs';
import { throughput } from './throughput.mjs';
import { ttfs } from './ttfs.mjs';

const only = new Set(arg('only', 'throughput,ttfs,rss').split(','));
const port = Number(arg('port', 47611));
const rebuild = process.argv.includes('--rebuild');
console.log(
  `bench/stream on ${availableParallelism()} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 1024 ** 3)} GB, node ${process.version}, ${new Date().toISOString()}`,
);

const lines = [];
if (only.has('throughput')) {
  const r = await throughput({
    count: Number(arg('count', 5000)),
    concurrency: Number(arg('concurrency', 256)),
    processes: Number(arg('processes', availableParallelism())),
    rounds: Number(arg('rounds', 2)),
    retries: Number(arg('retries', 0)),
    diagnose: process.argv.includes('--diagnose'),
  });
  lines.push(
    `throughput: stream ${r.bestStream.toFixed(1)} / download ${r.bestDownload.toFixed(1)} samples/s = ${r.ratio.toFixed(2)} (target ≥ 0.95)`,
  );
}
if (only.has('ttfs')) {
  const r = await ttfs({
    rows: Number(arg('rows', 1_000_000)),
    dim: Number(arg('dim', 512)),
    port,
    count: Number(arg('ttfs-count', 10_000)),
    minSimilarity: Number(arg('min-similarity', -1)),
    trials: Number(arg('trials', 3)),
    breakdownTrials: Number(arg('breakdown-trials', 1)),
    latency: !process.argv.includes('--no-latency'),
    rebuild,
    indexType: arg('index-type', 'auto'),
  });
  const sorted = r.firsts.map((f) => f.seconds).sort((a, b) => a - b);
  const fromPlan = r.fromPlan.map((f) => f.seconds).sort((a, b) => a - b);
  lines.push(
    `time to first sample: ${Math.round(sorted[Math.floor(sorted.length / 2)] * 1000)} ms median of ${sorted.length} from a spec, ${Math.round(fromPlan[Math.floor(fromPlan.length / 2)] * 1000)} ms from a plan (target ≤ 1000 ms)`,
  );
}
if (only.has('rss')) {
  const r = await rss({ count: Number(arg('rss-count', 100_000)), port, mode: arg('rss-mode', 'stdout'), rebuild });
  lines.push(
    `RSS over ${r.count} samples: ${Math.round(r.at10 / 1024)} → ${Math.round(r.at50 / 1024)} → ${Math.round(r.at100 / 1024)} MB at 10/50/100 %, peak ${Math.round(r.peak / 1024)} MB (target: flat, ≤ 1024 MB)`,
  );
}
console.log(`\n${lines.join('\n')}`);
