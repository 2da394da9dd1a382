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
    name: `run ${r.id} → ${r.output}`,
    state: r.state,
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
 * A queue's runs for a dashboard (`clipstream serve --queue`, `jobs status --port`): the status read every second,
 * the next read starting when the last one ended (a slow Redis is not asked twice at once). Redis away: the page
 * keeps the last counts and stderr says so once, and again when it answers. `close()` stops reading.
 */
export async function pollStatus(
  read: () => Promise<QueueStatus>,
  url: string,
): Promise<{ jobs: JobSource; close(): void }> {
  let latest = await read();
  let failing = false;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const next = () => {
    if (closed) return;
    timer = setTimeout(() => {
      read()
        .then(
          (s) => {
            latest = s;
            if (failing) process.stderr.write(`queue status: ${url} answers again\n`);
            failing = false;
          },
          (err: unknown) => {
            if (!failing)
              process.stderr.write(
                `queue status: cannot read ${url} (${(err as Error).message}); the dashboard shows the last counts\n`,
              );
            failing = true;
          },
        )
        .finally(next);
    }, 1000);
  };
  next();
  return {
    jobs: runJobs(() => latest),
    close: () => {
      closed = true;
      clearTimeout(timer);
    },
  };
}

/** `serve --queue URL`: connects, polls the status for the dashboard; `close()` stops and disconnects. */
export async function watchQueue(url: string): Promise<{ url: string; jobs: JobSource; close(): Promise<void> }> {
  const redis = await connectQueue(url);
  const queue = openShardQueue(url);
  const shown = displayUrl(url);
  const poll = await pollStatus(() => queueStatus(redis, queue), shown);
  return {
    url: shown,
    jobs: poll.jobs,
    close: async () => {
      poll.close();
      await queue.close();
      redis.disconnect();
    },
  };
}
