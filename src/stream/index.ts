/** The streaming engine: plan partitions → resized samples, back-filled, resumable, cached. */
export { openStream, createStreamContext, type OpenStreamOptions } from './api.js';
export { streamPartition, partitionOf, checkPartition, quotas, type Partition, type Stream, type StreamSample } from './engine.js';
export { streamToFolder, toRecord, type StreamFolderSummary } from './folder.js';
export { parseState, type StreamState } from './state.js';
export { StreamStats, type StreamStatsSnapshot } from './stats.js';
