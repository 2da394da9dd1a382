import { createHash } from 'node:crypto';
import { createFetcher, type Fetcher } from '../fetch/index.js';
import type { ImageOptions } from '../image/index.js';
import { fetchImage, type FetchImageContext } from '../sample/fetch-image.js';
import type { PlanHeader } from '../select/plan.js';
import type { CachedOutcome, SampleCache } from './cache.js';
import type { StreamStats } from './stats.js';

/** What the engine needs to turn a candidate url into a resized image: shared by all partitions of a process. */
export interface CandidateContext extends FetchImageContext {
  cache: SampleCache | null;
}

/** A cache made with other image options must never serve the wrong size: the namespace is their hash. */
export function cacheNamespace(image: ImageOptions): string {
  return createHash('sha256').update(JSON.stringify(image)).digest('hex').slice(0, 16);
}

export function createFetcherFor(fetch: PlanHeader['fetch']): Fetcher {
  return createFetcher({
    timeoutMs: fetch.timeout * 1000,
    retries: fetch.retries,
    maxBytes: fetch.max_bytes,
    concurrency: fetch.concurrency,
    perHostConcurrency: fetch.per_host,
    userAgentToken: fetch.user_agent_token,
    disallowedHeaderDirectives: fetch.disallowed_header_directives,
    allowPrivateNetworks: fetch.allow_private_networks,
  });
}

/** One url → a resized image or a failure reason; the cache first when there is one. Never throws. */
export async function fetchCandidate(
  url: string,
  ctx: CandidateContext,
  stats: StreamStats,
  signal?: AbortSignal,
): Promise<CachedOutcome> {
  stats.inFlight++;
  try {
    const cached = await ctx.cache?.get(url);
    if (cached) {
      stats.cacheHits++;
      count(cached, stats);
      return cached;
    }
    if (ctx.cache) stats.cacheMisses++;
    const outcome = await download(url, ctx, signal);
    if (!outcome.ok && outcome.reason === 'aborted') return outcome; // the reader left: not a property of the url
    await ctx.cache?.put(url, outcome);
    count(outcome, stats);
    return outcome;
  } finally {
    stats.inFlight--;
  }
}

async function download(url: string, ctx: CandidateContext, signal?: AbortSignal): Promise<CachedOutcome> {
  const image = await fetchImage(url, ctx, { signal, hash: 'sha256' });
  if (!image.ok) return { ok: false, reason: image.reason, message: image.message };
  // processed (no keepBytes): every size is known
  const { data, format, width, height, originalWidth, originalHeight, hash } = image;
  return {
    ok: true,
    image: data,
    format,
    width: width!,
    height: height!,
    originalWidth: originalWidth!,
    originalHeight: originalHeight!,
    sha256: hash ?? null,
  };
}

function count(outcome: CachedOutcome, stats: StreamStats): void {
  if (outcome.ok) stats.successes++;
  else stats.fail(outcome.reason);
}
