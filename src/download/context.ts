import { createFetcher } from '../fetch/index.js';
import { defaultImageSlots } from '../sample/fetch-image.js';
import { imageOptionsOf } from '../image/index.js';
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
    image: imageOptionsOf(o),
    imageSlots: defaultImageSlots(),
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
