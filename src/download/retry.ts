/** A shard whose run threw (its writer failed, its worker died): it has no stats file and is redone later. */
export interface FailedShard {
  shardId: number;
  message: string;
}

/**
 * img2dataset's retrier: once the main pass is over, the failed shards run again, up to `maxShardRetry` rounds,
 * each round over the shards the previous one left failed. Returns the shards still failed and the rounds run.
 */
export async function retryFailedShards(
  failed: FailedShard[],
  maxShardRetry: number,
  rerun: (failed: FailedShard[]) => Promise<FailedShard[]>,
  onRound: (round: number, shards: number) => void = () => {},
): Promise<{ failed: FailedShard[]; rounds: number }> {
  let rounds = 0;
  while (failed.length > 0 && rounds < maxShardRetry) {
    rounds++;
    onRound(rounds, failed.length);
    failed = await rerun(failed);
  }
  return { failed, rounds };
}
