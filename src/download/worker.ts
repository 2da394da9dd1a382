import { parentPort, workerData } from 'node:worker_threads';
import { isClipstreamError } from '../core/errors.js';
import { createShardContext, type ShardPlacement } from './context.js';
import type { DownloadOptions } from './options.js';
import { addToDelta, DELTA_INTERVAL_MS, emptyDelta } from './progress.js';
import { downloadShard, type ShardTask } from './shard.js';

const port = parentPort!;
const { options, placement } = workerData as { options: DownloadOptions; placement: ShardPlacement };
const ctx = createShardContext(options, placement);

let delta = emptyDelta();
let dirty = false;
const flush = () => {
  if (!dirty) return;
  port.postMessage({ type: 'delta', delta });
  delta = emptyDelta();
  dirty = false;
};
setInterval(flush, DELTA_INTERVAL_MS).unref();

port.on('message', async (msg: { type: 'shard'; task: ShardTask }) => {
  const { task } = msg;
  try {
    const stats = await downloadShard(task, ctx, (record) => {
      addToDelta(delta, record);
      dirty = true;
    });
    flush();
    port.postMessage({ type: 'done', shardId: task.shardId, stats });
  } catch (err) {
    flush();
    port.postMessage({
      type: 'failed',
      shardId: task.shardId,
      message: err instanceof Error ? err.message : String(err),
      code: isClipstreamError(err) ? err.code : undefined,
    });
  }
});
