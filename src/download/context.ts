import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isS3Url } from '../io/s3.js';
import { shardTarget } from '../sink/index.js';
import { createFetcher } from '../fetch/index.js';
import { defaultImageSlots } from '../sample/fetch-image.js';
import { imageOptionsOf } from '../image/index.js';
import { metaFields, metaLayout } from './columns.js';
import type { DownloadOptions } from './options.js';
import type { ShardContext } from './shard.js';

/**
 * Where this process stages shards bound for S3 (each shard in a folder of its own inside; the worker threads of a
 * process share it). Removed when the runner closes; a process killed with -9 leaves it in the temporary folder.
 */
export function remoteStagingRoot(): string {
  return join(tmpdir(), `clipstream-staging-${process.pid}`);
}

export interface ShardPlacement {
  /**
   * Stage every shard and publish it into the output folder (workers of a queue sharing a folder). An s3:// output
   * is always staged, in a temporary folder of this machine.
   */
  staged?: boolean;
}

/** Everything one process needs to download shards, built from the validated options. Owns a fetcher. */
export function createShardContext(
  o: DownloadOptions,
  { staged = false }: ShardPlacement = {},
): ShardContext & { close(): Promise<void> } {
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
  const remote = isS3Url(o.outputFolder);
  const staging = remote ? remoteStagingRoot() : join(o.outputFolder, '_tmp', 'staging');
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
    ...(remote || staged
      ? { outputFolder: staging, target: shardTarget(o.outputFolder) }
      : { outputFolder: o.outputFolder }),
    outputFormat: o.outputFormat,
    numberSamplePerShard: o.numberSamplePerShard,
    oomShardCount: o.oomShardCount,
    threadCount: o.threadCount,
    async close() {
      await fetcher.close();
      if (remote) await rm(staging, { recursive: true, force: true });
    },
  };
}
