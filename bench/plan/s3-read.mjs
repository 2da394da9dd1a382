// bench/plan/s3-read (issue 18): reading a plan's candidates in place from `s3://` against reading the same plan
// from a local folder. A plan of --queries × --count synthetic candidates (~230 bytes a line) is written by writePlan
// to a local folder and to moto's S3 server (scripts/s3-env.sh) at a free port on 127.0.0.1; then, in this process,
// each of --partitions partitions reads its stripe of every query (candidate i of a query is partition i mod P's)
// as a stream does: --window reads launched at once, a new one as each ends. Printed per source: time, candidates/s,
// GETs and bytes fetched (S3: counted on the SDK client), and the ratio S3 ÷ local. moto on loopback answers in about
// a millisecond; a real bucket's GET takes 10–50 ms, so --latency MS adds that much to every GET (a delay before it
// is sent) to show what the blocks buy there.
// --shuffled reads each stripe in a random order, as epochs ≥ 1 do.
// Usage: node bench/plan/s3-read.mjs [--count 100000] [--queries 2] [--partitions 4] [--window 256] [--latency 0]
//        [--shuffled] [--read 4 (partitions read, the first ones; all by default)]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg, root } from '../stream/common.mjs';

const count = Number(arg('count', 100_000));
const queries = Number(arg('queries', 2));
const partitions = Number(arg('partitions', 4));
const window = Number(arg('window', 256));
const latency = Number(arg('latency', 0));
const shuffled = process.argv.includes('--shuffled');
/** Partitions read (the first ones): a stream process reads one. */
const reading = Number(arg('read', partitions));

const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const motoServer = execFileSync('bash', [join(root, 'scripts/s3-env.sh')], { encoding: 'utf8' })
  .trim()
  .split('\n')
  .at(-1);
const moto = spawn(motoServer, ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
const endpoint = `http://127.0.0.1:${port}`;
Object.assign(process.env, {
  AWS_ENDPOINT_URL_S3: endpoint,
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  AWS_REGION: 'us-east-1',
});
for (let i = 0; ; i++) {
  if ((await fetch(`${endpoint}/moto-api/`).catch(() => undefined))?.ok) break;
  if (i > 300) throw new Error('moto_server did not start');
  await new Promise((r) => setTimeout(r, 100));
}

const { writePlan, readPlan } = await import(join(root, 'dist/select/plan-file.js'));
const { s3Client } = await import(join(root, 'dist/io/s3.js'));
const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
const client = await s3Client();
await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
const fetched = { gets: 0, bytes: 0 };
client.middlewareStack.add(
  (next, context) => async (args) => {
    if (context.commandName === 'GetObjectCommand') {
      const range = /^bytes=(\d+)-(\d+)$/.exec(args.input.Range ?? '');
      fetched.gets++;
      fetched.bytes += range ? Number(range[2]) - Number(range[1]) + 1 : 0;
      if (latency > 0) await new Promise((r) => setTimeout(r, latency));
    }
    return next(args);
  },
  { step: 'initialize', name: 'benchGets' },
);

const candidatesOf = (q) =>
  Array.from({ length: count }, (_, i) => ({
    id: q * count + i,
    similarity: 1 - i / count,
    url: `https://images.example.com/${q}/${i.toString(36)}/photo-${i}.jpg`,
    caption: `a photo ${i} of query ${q}, with a caption about as long as LAION's median one`,
    metadata: { width: 512, height: 384, license: null },
  }));
const header = {
  format_version: 2,
  id: 'bench',
  created_at: new Date().toISOString(),
  index: { location: null, count: queries * count, dim: 512, created_at: 'bench' },
  seed: 0,
  order: 'similarity',
  image: {},
  fetch: {},
  cache: {},
  queries: Array.from({ length: queries }, (_, q) => ({
    name: `q${q}`,
    requested: count,
    available: count,
    planned: count,
  })),
};
const plan = { header, candidates: Array.from({ length: queries }, (_, q) => candidatesOf(q)), warnings: [] };
const dir = await mkdtemp(join(tmpdir(), 'clipstream-bench-s3plan-'));

/** Epochs after the first walk a stripe in a seeded permutation: random reads over the whole plan. */
function shuffle(a) {
  let x = 12345;
  for (let i = a.length - 1; i > 0; i--) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const j = x % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
}

/** Every partition's stripe of every query, `window` reads in flight; the checksum proves the same reads. */
async function readAll(where) {
  const p0 = { ...fetched };
  const t = performance.now();
  const opened = await readPlan(where);
  let sum = 0;
  for (let p = 0; p < reading; p++) {
    for (const list of opened.candidates) {
      const stripe = Array.from({ length: Math.ceil((list.length - p) / partitions) }, (_, k) => p + k * partitions);
      if (shuffled) shuffle(stripe);
      let next = 0;
      const worker = async () => {
        while (next < stripe.length) {
          const c = await list.at(stripe[next++]);
          sum += c.id % 997;
        }
      };
      await Promise.all(Array.from({ length: window }, worker));
    }
  }
  await opened.close();
  const seconds = (performance.now() - t) / 1000;
  return { seconds, sum, gets: fetched.gets - p0.gets, bytes: fetched.bytes - p0.bytes };
}

try {
  const bytes = await writePlan(join(dir, 'plan'), plan);
  const t = performance.now();
  await writePlan('s3://bench/plan', plan);
  const upload = (performance.now() - t) / 1000;
  const local = await readAll(join(dir, 'plan'));
  const s3 = await readAll('s3://bench/plan');
  if (local.sum !== s3.sum) throw new Error('the S3 plan read other candidates than the local one');
  const n = Math.round((queries * count * reading) / partitions);
  const mb = (b) => (b / 2 ** 20).toFixed(1);
  console.log(
    `plan: ${n.toLocaleString('en-US')} candidates, ${mb(bytes)} MB; staged and published to S3 in ${upload.toFixed(1)} s`,
  );
  for (const [name, r] of [
    ['local', local],
    ['s3', s3],
  ])
    console.log(
      `${name.padEnd(5)} ${r.seconds.toFixed(2)} s, ${Math.round(n / r.seconds).toLocaleString('en-US')} candidates/s` +
        (name === 's3'
          ? `, ${r.gets} GETs, ${mb(r.bytes)} MB fetched (${(r.bytes / bytes).toFixed(2)} × the plan)`
          : ''),
    );
  console.log(
    `s3 ÷ local: ${(s3.seconds / local.seconds).toFixed(2)}× the time (P=${partitions}, window ${window}, +${latency} ms a GET${shuffled ? ', shuffled' : ''})`,
  );
} finally {
  moto.kill();
  await rm(dir, { recursive: true, force: true });
}
