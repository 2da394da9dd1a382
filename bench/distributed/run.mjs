// bench/distributed: `download --distributor queue` with 1, 2 and 4 `clipstream worker` processes against
// `clipstream download --processes-count N` on the same url list and web, in the same run (the queue's cost as a
// ratio, target ≥ 0.95), then what Redis does per shard: commands per shard and shards per second through one Redis.
// Usage: node bench/distributed/run.mjs [--count 3000] [--shard-size 250] [--threads 64] [--workers 1,2,4] [--rounds 2]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { arg, root, startBenchServer, timed } from '../download/common.mjs';

const count = Number(arg('count', 3000));
const shardSize = arg('shard-size', '250');
const threads = arg('threads', '64');
const workerCounts = arg('workers', '1,2,4').split(',').map(Number);
const rounds = Number(arg('rounds', 2));
const cli = join(root, 'dist/cli/main.js');

const server = await startBenchServer();
const redis = await startRedis();
const dir = await mkdtemp(join(tmpdir(), 'clipstream-bench-distributed-'));
try {
  const list = join(dir, 'urls.txt');
  await writeFile(list, Array.from({ length: count }, (_, n) => `${server.url}/img/${n}.jpg`).join('\n') + '\n');
  console.log(
    `bench/distributed: ${count} urls in shards of ${shardSize}, --thread-count ${threads}, ${rounds} round(s), redis ${redis.url}`,
  );
  for (const n of workerCounts) {
    const ratios = [];
    for (let r = 0; r < rounds; r++) {
      // alternate which goes first: the machine warms up and its noise drifts
      const order = r % 2 === 0 ? ['local', 'queue'] : ['queue', 'local'];
      const rate = {};
      for (const kind of order) rate[kind] = await (kind === 'local' ? local(list, n, r) : queued(list, n, r));
      ratios.push(rate.queue / rate.local);
      console.log(
        `  ${n} process(es), round ${r + 1}: download --processes-count ${n} ${rate.local.toFixed(1)} samples/s, queue with ${n} worker(s) ${rate.queue.toFixed(1)} samples/s, ratio ${(rate.queue / rate.local).toFixed(3)}`,
      );
    }
    const sorted = [...ratios].sort((a, b) => a - b);
    const mid = sorted.length / 2;
    const median = sorted.length % 2 === 1 ? sorted[Math.floor(mid)] : (sorted[mid - 1] + sorted[mid]) / 2;
    console.log(`ratio with ${n} process(es): ${median.toFixed(3)} (median of ${rounds}; target ≥ 0.95)`);
  }
  await redisPerShard();
} finally {
  server.stop();
  redis.stop();
  await rm(dir, { recursive: true, force: true });
}

function flags(list, out) {
  // one local server plays the whole web: lift the per-host limit that protects real hosts
  return [
    'download',
    '--url-list',
    list,
    '--output-folder',
    out,
    '--output-format',
    'webdataset',
    '--image-size',
    '256',
    '--resize-mode',
    'center_crop',
    '--thread-count',
    threads,
    '--per-host-concurrency',
    threads,
    '--number-sample-per-shard',
    shardSize,
    '--allow-private-networks',
    '--progress-interval',
    '60',
  ];
}

async function successesIn(out) {
  let n = 0;
  for (const f of (await readdir(out)).filter((f) => f.endsWith('_stats.json'))) {
    n += JSON.parse(await readFile(join(out, f), 'utf8')).successes;
  }
  return n;
}

async function local(list, n, round) {
  const out = join(dir, `local-${n}-${round}`);
  const run = await timed(process.execPath, [cli, ...flags(list, out), '--processes-count', String(n)]);
  if (run.code !== 0) throw new Error(`download failed:\n${run.output}`);
  return (await successesIn(out)) / run.seconds;
}

/** N idle workers first (as on a cluster, they wait for work), then the head's run is timed from start to end. */
async function queued(list, n, round) {
  const out = join(dir, `queue-${n}-${round}`);
  const workers = Array.from({ length: n }, (_, i) =>
    spawn(process.execPath, [cli, 'worker', '--queue', redis.url, '--name', `bench-${i}`], { stdio: 'ignore' }),
  );
  await new Promise((r) => setTimeout(r, 1500)); // connected and blocked on the empty queue
  try {
    const run = await timed(process.execPath, [
      cli,
      ...flags(list, out),
      '--distributor',
      'queue',
      '--queue',
      redis.url,
    ]);
    if (run.code !== 0) throw new Error(`queued download failed:\n${run.output}`);
    return (await successesIn(out)) / run.seconds;
  } finally {
    await Promise.all(workers.map((w) => new Promise((r) => (w.once('close', r), w.kill('SIGTERM')))));
  }
}

/**
 * What Redis does per shard, measured on this Redis: 2 000 shard jobs of a run whose shards do nothing (no rows),
 * enqueued as the head does and taken by one worker process of 4 × 1 concurrency (as `clipstream worker`), with
 * Redis's own command counts (INFO commandstats) before and after.
 */
async function redisPerShard() {
  const { Redis } = await import('ioredis');
  const client = new Redis(redis.port, '127.0.0.1');
  const commands = async () => {
    const info = await client.info('commandstats');
    return [...info.matchAll(/calls=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  };
  const shards = 2000;
  const script = join(root, 'bench/distributed/shard-load.mjs');
  const before = await commands();
  const start = performance.now();
  execFileSync(process.execPath, [script, redis.url, String(shards)], { stdio: 'inherit' });
  const seconds = (performance.now() - start) / 1000;
  const perShard = ((await commands()) - before) / shards;
  client.disconnect();
  console.log(
    `redis: ${perShard.toFixed(1)} commands per shard (enqueue, take, lock renewals, complete, stats record); ${(shards / seconds).toFixed(0)} shards/s through one Redis with one client process`,
  );
}

async function startRedis() {
  const binary = execFileSync('bash', [join(root, 'scripts/redis-env.sh')], { encoding: 'utf8' }).trim();
  const port = await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const folder = await mkdtemp(join(tmpdir(), 'clipstream-bench-redis-'));
  const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--dir', folder, '--save', ''], {
    stdio: 'ignore',
  });
  await new Promise((r) => setTimeout(r, 500));
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    stop() {
      child.kill('SIGTERM');
      rm(folder, { recursive: true, force: true });
    },
  };
}
