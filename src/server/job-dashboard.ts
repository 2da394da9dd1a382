import { invalidOption, portInUse } from '../core/errors.js';
import type { ProgressCounter } from '../download/progress.js';
import { createFetcher } from '../fetch/index.js';
import { createServer } from './app.js';
import type { JobCounters, JobSource } from './events.js';

/** A `clipstream download`'s progress in the dashboard's shape (the counter is there once the job has started). */
export function downloadJob(name: string, counter: () => ProgressCounter | undefined): JobSource {
  return (): JobCounters[] => {
    const s = counter()?.snapshot();
    const job: JobCounters = {
      name,
      kind: 'download',
      delivered: s?.successes ?? 0,
      target: s?.total ?? null,
      attempts: s?.done ?? 0,
      successes: s?.successes ?? 0,
      failures: (s?.failedToDownload ?? 0) + (s?.failedToResize ?? 0),
      reasons: s?.reasons ?? {},
      repeats: null,
      bytes: null,
      cache_hits: null,
      cache_misses: null,
      shards: { done: s?.shardsDone ?? 0, skipped: s?.shardsSkipped ?? 0 },
    };
    return [job];
  };
}

/**
 * The page of `clipstream serve` with only its dashboard, for another job of this process (a download): on
 * 127.0.0.1, the same /api/events. Resolves once it listens; `close()` stops it.
 */
export async function startJobDashboard(o: {
  port: number;
  jobs: JobSource[];
  host?: string;
}): Promise<{ url: string; close(): Promise<void> }> {
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535)
    throw invalidOption(`Expected a port in 0…65535 for --port but received ${o.port}`);
  const fetcher = createFetcher({});
  const app = createServer({ indices: new Map(), fetcher, web: { jobs: o.jobs } });
  try {
    const url = await app.listen({ port: o.port, host: o.host ?? '127.0.0.1' });
    return {
      url,
      close: async () => {
        await app.close();
        await fetcher.close();
      },
    };
  } catch (err) {
    await fetcher.close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE')
      throw portInUse(`port ${o.port} is in use`, { hint: 'Choose another --port, or --port 0 for any free port.' });
    throw err;
  }
}
