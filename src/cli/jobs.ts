import { Command } from 'commander';
import { formatReasons } from '../core/failure-hints.js';
import type { QueueStatus } from '../queue/status.js';
import { formatDuration } from './progress-view.js';
import { toNumber } from './parse.js';

/** `clipstream jobs status|retry|cancel`: what the queue holds, failed shards back in, runs stopped. */
export function jobsCommand(): Command {
  const jobs = new Command('jobs').description('Status of the shard queue, retry failed shards, cancel runs');
  jobs
    .command('status')
    .description('shards done / active / waiting / failed per run, samples/s across workers, per-worker rates')
    .requiredOption('--queue <url>', "the job queue's Redis, redis://HOST:PORT/DB")
    .option('--json', 'print the status as JSON', false)
    .option('--watch <s>', 'print it again every S seconds until Ctrl-C', toNumber('--watch'))
    .option(
      '--port <port>',
      "serve the runs' counts on the dashboard page at http://127.0.0.1:PORT/#dashboard until Ctrl-C (0: any port)",
      toNumber('--port'),
    )
    .action(async (flags: { queue: string; json: boolean; watch?: number; port?: number }) => {
      await withQueue(flags.queue, async ({ redis, queue }) => {
        const { queueStatus } = await import('../queue/status.js');
        if (flags.port !== undefined) {
          const { displayUrl } = await import('../queue/connection.js');
          return serveDashboard(flags.port, () => queueStatus(redis, queue), displayUrl(flags.queue));
        }
        for (;;) {
          const status = await queueStatus(redis, queue);
          process.stdout.write(flags.json ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status));
          if (flags.watch === undefined) return;
          await new Promise((r) => setTimeout(r, flags.watch! * 1000));
        }
      });
    });
  jobs
    .command('retry')
    .description('put the failed shards of a run (default: every run) back in the queue')
    .requiredOption('--queue <url>', "the job queue's Redis")
    .option('--run <id>', 'only this run (ids: jobs status)')
    .action(async (flags: { queue: string; run?: string }) => {
      await withQueue(flags.queue, async ({ redis, queue }) => {
        const { retryFailed } = await import('../queue/control.js');
        const retried = await retryFailed(redis, queue, flags.run);
        const n = retried.reduce((k, r) => k + r.shards.length, 0);
        for (const r of retried)
          process.stdout.write(`run ${r.runId}: ${r.shards.length} failed shard(s) back in the queue\n`);
        if (n === 0) process.stdout.write('no failed shards\n');
        else
          process.stdout.write(
            'follow them with: clipstream jobs status, or the download command again (re-attaches)\n',
          );
      });
    });
  jobs
    .command('cancel')
    .description('cancel a run (default: every running run): waiting shards leave the queue, shards in flight stop')
    .requiredOption('--queue <url>', "the job queue's Redis")
    .option('--run <id>', 'only this run (ids: jobs status)')
    .action(async (flags: { queue: string; run?: string }) => {
      await withQueue(flags.queue, async ({ redis, queue }) => {
        const { cancelRuns } = await import('../queue/control.js');
        const cancelled = await cancelRuns(redis, queue, flags.run);
        for (const c of cancelled)
          process.stdout.write(`run ${c.runId}: cancelled, ${c.removed} waiting shard(s) removed\n`);
        if (cancelled.length === 0) process.stdout.write('no running run\n');
      });
    });
  return jobs;
}

async function withQueue<T>(
  url: string,
  work: (q: {
    redis: import('ioredis').Redis;
    queue: import('bullmq').Queue<import('../queue/jobs.js').ShardJobData>;
  }) => Promise<T>,
): Promise<T> {
  const { connectQueue } = await import('../queue/connection.js');
  const { openShardQueue } = await import('../queue/jobs.js');
  const redis = await connectQueue(url);
  const queue = openShardQueue(url);
  try {
    return await work({ redis, queue });
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

/**
 * The dashboard of `clipstream serve` (src/server/job-dashboard.ts) with one job per run, its counts read from Redis
 * every second: samples/s, attempts, failures and reasons, shards done / skipped / active / waiting / failed.
 */
async function serveDashboard(port: number, status: () => Promise<QueueStatus>, url: string): Promise<void> {
  const { startJobDashboard } = await import('../server/job-dashboard.js');
  const { pollStatus } = await import('../queue/dashboard.js');
  const poll = await pollStatus(status, url);
  const dashboard = await startJobDashboard({ port, jobs: [poll.jobs] });
  process.stderr.write(`queue dashboard: ${dashboard.url}/#dashboard (Ctrl-C stops it)\n`);
  await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  poll.close();
  await dashboard.close();
}

/** The status as text: the queue's counts, one block per run, one line per worker. */
export function formatStatus(s: QueueStatus): string {
  const j = s.jobs;
  const out = [
    `queue: ${j.active ?? 0} active, ${(j.waiting ?? 0) + (j.prioritized ?? 0) + (j.delayed ?? 0)} waiting, ${j.failed ?? 0} failed, ${j.completed ?? 0} completed (kept)`,
    `workers: ${s.workers.length}, ${s.samplesPerSecond.toFixed(1)} samples/s in all` +
      (s.silentWorkers.length > 0 ? ` (silent: ${s.silentWorkers.join(', ')})` : ''),
  ];
  for (const w of s.workers) {
    out.push(
      `  ${w.name}: ${w.rate.toFixed(1)} samples/s, ${w.active.length} shard(s) in flight, ${w.done} done, ${w.failed} failed, ${w.processes} process(es)`,
    );
  }
  for (const r of s.runs) {
    const age = formatDuration((Date.now() - r.started) / 1000);
    out.push(
      `run ${r.id} (${r.state}, started ${age} ago) → ${r.output}`,
      `  shards: ${r.done} done, ${r.active} active, ${r.waiting} waiting, ${r.failed} failed of ${r.shards}${r.enqueued ? '' : '+ (still enqueuing)'}; ${r.skipped} done before`,
      `  samples: ${r.successes} ok of ${r.count} in done shards; ${r.processed} processed`,
    );
    if (Object.keys(r.reasons).length > 0) out.push(`  failure reasons: ${formatReasons(r.reasons)}`);
    for (const f of r.failedShards.slice(0, 10)) out.push(`  shard ${f.shardId} FAILED: ${f.message}`);
  }
  return out.join('\n') + '\n';
}
