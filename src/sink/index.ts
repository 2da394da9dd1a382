/** Sinks: webdataset tar (shard file and stream), files, parquet, `_stats.json`, crash-safe shard layout, where shards are published (a folder or s3://). */
export { fsyncPath, listDoneShards, removePartialShards, renameReplacing, shardPaths, PARTIAL } from './layout.js';
export { assertKey, metaJson, sampleMembers, type SampleMember } from './members.js';
export {
  openShardWriter,
  OUTPUT_FORMATS,
  type OutputFormat,
  type ShardWriter,
  type ShardWriterOptions,
} from './shard-writer.js';
export {
  CappedCounter,
  StatsCollector,
  STATUS_DICT_CAP,
  type ShardStats,
  type StatsCollectorOptions,
} from './stats.js';
export { createTarSampleStream, type TarSampleStream, type TarSampleStreamOptions } from './tar.js';
export { shardTarget, type ShardTarget } from './target.js';
