/** The streaming engine: plan partitions → resized samples, back-filled, resumable, cached. */
export { openStream, createStreamContext, type OpenStreamOptions } from './api.js';
export { streamPartition, type Stream, type StreamSample } from './engine.js';
export { partitionOf, checkPartition, quotas, MAX_PARTITIONS, type Partition } from './partition.js';
export { partitionTar, ERROR_KEY, type StreamErrorBody } from './tar-writer.js';
export { streamToFolder, type StreamFolderSummary } from './folder.js';
export { toRecord } from './record.js';
export { parseState, type StreamState } from './state.js';
export { StreamStats, type StreamStatsSnapshot } from './stats.js';
