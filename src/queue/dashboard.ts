import type { JobCounters, JobSource } from '../server/events.js';
import { connectQueue, displayUrl } from './connection.js';
import { openShardQueue } from './jobs.js';
import { queueStatus, type QueueStatus, type RunStatus } from './status.js';

/**
 * The runs of a queue as dashboard jobs (every run of the latest status, so runs started later appear): samples
 * processed so far count as attempts (shards in flight included), reasons are those of done shards.
 */
export function runJobs(latest: () => QueueStatus | undefined): JobSource {
  return () => (latest()?.runs ?? []).map(countersOf);
}

function countersOf(r: RunStatus): JobCounters {
  const failures = Math.max(0, r.processed - r.successes);
  return {
    name: `run ${r.id} → ${r.output} (${r.state})`,
    kind: 'download',
    delivered: r.successes,
    target: null,
    attempts: Math.max(r.processed, r.count),
    successes: r.successes,
    failures: Math.max(failures, r.count - r.successes),
    reasons: r.reasons,
    repeats: null,
    bytes: null,
    cache_hits: null,
    cache_misses: null,
    shards: { done: r.done, skipped: r.skipped, active: r.active, waiting: r.waiting, failed: r.failed },
  };
}

/**
 * A queue's runs for the dashboard of `clipstream serve --queue`: the status read from Redis every second (Redis
 * away: the last one kept). `close()` stops reading and disconnects.
 */
export async function watchQueue(url: string): Promise<{ url: string; jobs: JobSource; close(): Promise<void> }> {
  const redis = await connectQueue(url);
  const queue = openShardQueue(url);
  let latest: QueueStatus | undefined;
  const read = () =>
    queueStatus(redis, queue).then(
      (s) => void (latest = s),
      () => {},
    );
  await read();
  const timer = setInterval(() => void read(), 1000);
  return {
    url: displayUrl(url),
    jobs: runJobs(() => latest),
    close: async () => {
      clearInterval(timer);
      await queue.close();
      redis.disconnect();
    },
  };
}
