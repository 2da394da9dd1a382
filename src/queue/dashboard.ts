import type { JobCounters, JobSource } from '../server/events.js';
import type { QueueStatus, RunStatus } from './status.js';

/**
 * The runs of a queue as dashboard jobs (one per run known when the page starts), from the latest status: samples
 * processed so far count as attempts (shards in flight included), reasons are those of done shards.
 */
export function runJobs(latest: () => QueueStatus): JobSource[] {
  return latest().runs.map((first) => () => countersOf(latest().runs.find((r) => r.id === first.id) ?? first));
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
