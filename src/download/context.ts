import { availableParallelism } from 'node:os';
import { Semaphore } from '../core/async.js';
import { createFetcher } from '../fetch/index.js';
import type { ImageOptions } from '../image/index.js';
import { metaFields, metaLayout } from './columns.js';
import type { DownloadOptions } from './options.js';
import type { ShardContext } from './shard.js';

/** Everything one process needs to download shards, built from the validated options. Owns a fetcher. */
export function createShardContext(o: DownloadOptions): ShardContext & { close(): Promise<void> } {
  const fetcher = createFetcher({
    timeoutMs: o.timeout * 1000,
    retries: o.retries,
    maxBytes: o.maxBytes,
    concurrency: o.threadCount,
    perHostConcurrency: o.perHostConcurrency,
    userAgentToken: o.userAgentToken,
    disallowedHeaderDirectives: o.disallowedHeaderDirectives,
    allowPrivateNetworks: o.allowPrivateNetworks,
  });
  const layout = metaLayout(o);
  return {
    fetcher,
    image: imageOptions(o),
    imageSlots: new Semaphore(availableParallelism() * 4),
    computeHash: o.computeHash,
    verifyHashCol: o.verifyHash?.[0],
    hasCaption: o.captionCol !== undefined,
    layout,
    fields: metaFields(layout),
    extractExif: o.extractExif,
    bboxCol: o.bboxCol,
    disableAllReencoding: o.disableAllReencoding,
    outputFolder: o.outputFolder,
    outputFormat: o.outputFormat,
    numberSamplePerShard: o.numberSamplePerShard,
    oomShardCount: o.oomShardCount,
    threadCount: o.threadCount,
    close: () => fetcher.close(),
  };
}

export function imageOptions(o: DownloadOptions): ImageOptions {
  return {
    imageSize: o.imageSize,
    resizeMode: o.resizeMode,
    resizeOnlyIfBigger: o.resizeOnlyIfBigger,
    downscaleInterpolation: o.downscaleInterpolation,
    upscaleInterpolation: o.upscaleInterpolation,
    encodeFormat: o.encodeFormat,
    encodeQuality: o.encodeQuality,
    skipReencode: o.skipReencode,
    minImageSize: o.minImageSize,
    maxImageArea: o.maxImageArea,
    maxAspectRatio: o.maxAspectRatio,
    maxPixels: 268_402_689,
  };
}
