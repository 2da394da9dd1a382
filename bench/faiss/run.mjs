// bench/faiss (issue 16): an autofaiss OPQ/IVF-HNSW/PQ index (built once into ~/.cache/clipstream/bench-faiss/,
// faiss-cpu + autofaiss from scripts/faiss-env.sh's venv) searched by faiss-cpu and by clipstream's reader, one query
// at a time on one thread each. Prints, measured in this run: top-10 p50 ours ÷ faiss's, a range search keeping ~10 k
// results p50 ours ÷ faiss's, the same ids share, time to open, RSS after open against the resident structures, and
// behind a local HTTP server adding --latency ms per request: open time, range-search time and bytes read ÷ file size.
// The machine may be shared: faiss is timed again before each of --rounds rounds of ours, and each round's ratio
// printed with their median. CLIPSTREAM_FAISS_KERNELS=js times the JavaScript fallback instead of the WebAssembly kernels.
// Usage: node --expose-gc bench/faiss/run.mjs [--count 2000000] [--dim 512] [--key OPQ64_448,IVF4096_HNSW32,PQ64x8]
//          [--param nprobe=64,efSearch=128,ht=2048] [--queries 100] [--range 10000] [--latency 20] [--rounds 3]
import { execFileSync } from 'node:child_process';
import { createReadStream, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { arg, root } from '../download/common.mjs';

const { openFaissIndex } = await import(join(root, 'dist/index/faiss/index.js'));
const { openNpy } = await import(join(root, 'dist/io/npy.js'));

const count = Number(arg('count', 2_000_000));
const dim = Number(arg('dim', 512));
const key = arg('key', 'OPQ64_448,IVF4096_HNSW32,PQ64x8');
const param = arg('param', 'nprobe=64,efSearch=128,ht=2048');
const queries = Number(arg('queries', 100));
const want = Number(arg('range', 10_000));
const latency = Number(arg('latency', 20));
const rounds = Number(arg('rounds', 3));

const tag = createHash('sha256')
  .update(`${count} ${dim} ${key} ${param} ${queries} ${want}`)
  .digest('hex')
  .slice(0, 12);
const dir = join(homedir(), '.cache/clipstream/bench-faiss', tag);
const python = execFileSync('bash', [join(root, 'scripts/faiss-env.sh')], { encoding: 'utf8' }).trim();
console.log(`building / timing faiss on ${count} × ${dim} ${key} (${param}) in ${dir} …`);
/** Builds the index the first time; times faiss-cpu on it every time (its answers and radii do not change). */
function timeFaiss() {
  execFileSync(
    python,
    [join(root, 'bench/faiss/build.py'), dir, String(count), String(dim), key, param, String(queries), String(want)],
    { stdio: 'inherit', env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } },
  );
  return JSON.parse(readFileSync(join(dir, 'faiss.json'), 'utf8'));
}
let theirs = timeFaiss();
const npy = await openNpy(join(dir, 'queries.npy'));
const xq = await npy.readRows(0, npy.header.rowCount);
await npy.close();
const q = (i) => xq.subarray(i * dim, (i + 1) * dim);
const p50 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (b) => (b / 1048576).toFixed(0);

globalThis.gc?.();
const rssBefore = process.memoryUsage().rss;
let t = performance.now();
const index = await openFaissIndex(join(dir, 'image.index'));
const openMs = performance.now() - t;
globalThis.gc?.();
const rssAfter = process.memoryUsage().rss;
const { info } = index;
console.log(
  `index: ${info.type}, ${info.ntotal} vectors, ${mb(info.bytesOnDisk)} MB on disk, resident ${mb(info.residentBytes)} MB`,
);
console.log(
  `open: ours ${openMs.toFixed(0)} ms, faiss ${(theirs.open_s * 1000).toFixed(0)} ms (faiss reads the whole file)`,
);
console.log(
  `RSS after open − before: ${mb(rssAfter - rssBefore)} MB for ${mb(info.residentBytes)} MB resident: excess ${mb(rssAfter - rssBefore - info.residentBytes)} MB (bound 100)`,
);

for (let i = 0; i < 5; i++) await index.search(q(i), 10); // the JIT warmed
/** p50 of a pass over the queries: the first reads each probed list from the file, the second finds them cached. */
async function topPass() {
  const times = [];
  let same = 0;
  for (let i = 0; i < queries; i++) {
    t = performance.now();
    const [r] = await index.search(q(i), 10);
    times.push(performance.now() - t);
    same += r.ids.filter((id, j) => id === theirs.top10_ids[i][j]).length;
  }
  return { p50: p50(times), same };
}
/** p50 of a range search per query, each keeping ~`want` results (faiss's radius for that query). */
async function rangePass() {
  const times = [];
  let found = 0;
  for (let i = 0; i < queries; i++) {
    t = performance.now();
    const r = await index.rangeSearch(q(i), theirs.radii[i], { maxResults: 1_000_000 });
    times.push(performance.now() - t);
    found += r.ids.length;
  }
  return { p50: p50(times), found };
}
const cold = await topPass();
console.log(
  `top-10, lists read from the file: p50 ours ${cold.p50.toFixed(2)} ms, faiss ${p50(theirs.top10_ms).toFixed(2)} ms (all in memory) → ratio ${(cold.p50 / p50(theirs.top10_ms)).toFixed(2)}`,
);
const ratios = { top: [], range: [] };
for (let r = 0; r < rounds; r++) {
  if (r > 0) theirs = timeFaiss(); // faiss timed right before ours: both see about the same load
  const warm = await topPass();
  const range = await rangePass();
  const [faissTop, faissRange] = [p50(theirs.top10_ms), p50(theirs.range_ms)];
  ratios.top.push(warm.p50 / faissTop);
  ratios.range.push(range.p50 / faissRange);
  const faissFound = theirs.range_counts.reduce((a, b) => a + b, 0);
  console.log(
    `round ${r + 1}: top-10 (lists cached) p50 ours ${warm.p50.toFixed(2)} ms, faiss ${faissTop.toFixed(2)} ms → ${ratios.top.at(-1).toFixed(2)}; same id at the same rank ${((100 * warm.same) / (10 * queries)).toFixed(1)} % | range (~${want} results) p50 ours ${range.p50.toFixed(2)} ms, faiss ${faissRange.toFixed(2)} ms → ${ratios.range.at(-1).toFixed(2)}; results ours ${range.found}, faiss ${faissFound}`,
  );
}
console.log(
  `median of ${rounds} rounds, ours ÷ faiss (target ≤ 2): top-10 ${p50(ratios.top).toFixed(2)}, range ${p50(ratios.range).toFixed(2)}`,
);
console.log(
  `RSS after the searches − before open: ${mb(process.memoryUsage().rss - rssBefore)} MB (cache bound 64 MB)`,
);
await index.close();

// The same index behind a server adding `latency` ms to each request, as a distant host would.
let sent = 0;
let requests = 0;
const file = join(dir, 'image.index');
const size = (await stat(file)).size;
const server = createServer((req, res) => {
  requests++;
  setTimeout(() => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) return void res.writeHead(416).end();
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), size - 1);
    sent += end - start + 1;
    res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': end - start + 1 });
    createReadStream(file, { start, end }).pipe(res);
  }, latency);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/image.index`;
t = performance.now();
const remote = await openFaissIndex(url);
const remoteOpen = performance.now() - t;
const openBytes = sent;
t = performance.now();
const r = await remote.rangeSearch(q(0), theirs.radii[0], { maxResults: 1_000_000 });
const remoteRange = performance.now() - t;
console.log(
  `over HTTP (+${latency} ms a request): open ${remoteOpen.toFixed(0)} ms (${mb(openBytes)} MB, ${((openBytes / size) * 100).toFixed(1)} % of the file); range search of ${r.ids.length} results ${remoteRange.toFixed(0)} ms, ${mb(sent - openBytes)} MB = ${(((sent - openBytes) / size) * 100).toFixed(2)} % of the file; ${requests} requests in all`,
);
await remote.close();
server.close();
