import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Semaphore } from '../core/async.js';
import type { Fetcher } from '../fetch/index.js';
import { createFetcher } from '../fetch/index.js';
import { hashBytes, processImage, type ImageOptions } from '../image/index.js';
import type { PlanHeader } from '../select/plan.js';
import type { CachedOutcome, SampleCache } from './cache.js';
import type { StreamStats } from './stats.js';

/** What the engine needs to turn a candidate url into a resized image: shared by all partitions of a process. */
export interface CandidateContext {
  fetcher: Fetcher;
  image: ImageOptions;
  /** Bounds images decoded at once (see download/sample.ts: the libuv pool also serves the sinks). */
  imageSlots: Semaphore;
  cache: SampleCache | null;
}

export function imageOptionsOf(image: PlanHeader['image']): ImageOptions {
  return {
    imageSize: image.size,
    resizeMode: image.resize_mode,
    resizeOnlyIfBigger: image.resize_only_if_bigger,
    downscaleInterpolation: image.downscale_interpolation,
    upscaleInterpolation: image.upscale_interpolation,
    encodeFormat: image.encode_format,
    encodeQuality: image.encode_quality,
    skipReencode: false,
    minImageSize: image.min_image_size,
    maxImageArea: image.max_image_area ?? Infinity,
    maxAspectRatio: image.max_aspect_ratio ?? Infinity,
    maxPixels: 268_402_689,
  };
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

export function defaultImageSlots(): Semaphore {
  return new Semaphore(availableParallelism() * 4);
}

/** One url → a resized image or a failure reason; the cache first when there is one. Never throws. */
export async function fetchCandidate(url: string, ctx: CandidateContext, stats: StreamStats, signal?: AbortSignal): Promise<CachedOutcome> {
  stats.attempts++;
  const cached = await ctx.cache?.get(url);
  if (cached) {
    stats.cacheHits++;
    count(cached, stats);
    return cached;
  }
  if (ctx.cache) stats.cacheMisses++;
  const outcome = await download(url, ctx, signal);
  if (!outcome.ok && outcome.reason === 'aborted') {
    stats.attempts--; // the reader left: not a property of the url
    return outcome;
  }
  await ctx.cache?.put(url, outcome);
  count(outcome, stats);
  return outcome;
}

async function download(url: string, ctx: CandidateContext, signal?: AbortSignal): Promise<CachedOutcome> {
  const fetched = await ctx.fetcher.fetch(url, signal);
  if (!fetched.ok) return { ok: false, reason: fetched.reason, message: fetched.message };
  const sha256 = hashBytes(fetched.bytes, 'sha256');
  const image = await ctx.imageSlots.use(() => processImage(fetched.bytes, ctx.image));
  if (!image.ok) return { ok: false, reason: image.reason, message: image.message };
  return {
    ok: true,
    image: image.data,
    format: image.format,
    width: image.width,
    height: image.height,
    originalWidth: image.originalWidth,
    originalHeight: image.originalHeight,
    sha256,
  };
}

function count(outcome: CachedOutcome, stats: StreamStats): void {
  if (outcome.ok) stats.successes++;
  else stats.fail(outcome.reason);
}
