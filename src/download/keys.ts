/**
 * img2dataset's key scheme (downloader.py compute_key): the key is the row's position in the input, as
 * `10**oomSamplePerShard * shardId + indexInShard`, zero-padded to `oomSamplePerShard + oomShardCount` digits.
 * With the defaults (10 000 per shard, 5 shard digits): `000010005` is shard 1, row 5.
 */
export function keyFormatter(numberSamplePerShard: number, oomShardCount: number) {
  const oomSamplePerShard = Math.ceil(Math.log10(numberSamplePerShard));
  const width = oomSamplePerShard + oomShardCount;
  const scale = 10 ** oomSamplePerShard;
  return (shardId: number, indexInShard: number): string => String(scale * shardId + indexInShard).padStart(width, '0');
}

export function shardName(shardId: number, oomShardCount: number): string {
  return String(shardId).padStart(oomShardCount, '0');
}
