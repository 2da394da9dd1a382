// The Redis side of N shards, alone: enqueued as the head enqueues them (jobs of a run, in batches of 16), taken
// by a BullMQ worker as `clipstream worker` takes them (concurrency 4, the same options) whose processor does only
// what a worker does in Redis for a shard (record its stats). Used by run.mjs: node shard-load.mjs REDIS_URL N
import { Worker } from 'bullmq';
import { root } from '../download/common.mjs';

const [url, n] = [process.argv[2], Number(process.argv[3])];
const dist = (p) => import(new URL(`dist/${p}`, `file://${root}/`).href);
const { connectQueue, KEY_PREFIX, SHARD_QUEUE } = await dist('queue/connection.js');
const { bullConnection, jobIdOf, openShardQueue } = await dist('queue/jobs.js');
const { createRun, recordDone } = await dist('queue/runs.js');
const { parseDownloadOptions } = await dist('download/options.js');

const redis = await connectQueue(url);
const queue = openShardQueue(url);
const runId = 'bench-load';
await createRun(redis, runId, '/tmp/bench-load', parseDownloadOptions({ urlList: 'x' }));
for (let i = 0; i < n; i += 16) {
  await queue.addBulk(
    Array.from({ length: Math.min(16, n - i) }, (_, k) => ({
      name: 'download',
      data: { runId, shardId: i + k },
      opts: {
        jobId: jobIdOf(runId, i + k),
        attempts: 2,
        backoff: { type: 'fixed', delay: 1000 },
        removeOnComplete: { count: 1000 },
      },
    })),
  );
}
const stats = { count: 0, successes: 0, failed_to_download: 0, failed_to_resize: 0, reason_dict: {} };
let done = 0;
await new Promise((resolve) => {
  const worker = new Worker(
    SHARD_QUEUE,
    async (job) => {
      await recordDone(redis, runId, job.data.shardId, stats);
      if (++done === n) setTimeout(() => worker.close().then(resolve), 0);
    },
    { connection: bullConnection(url), prefix: KEY_PREFIX, concurrency: 4, lockDuration: 30_000 },
  );
});
await queue.close();
redis.disconnect();
