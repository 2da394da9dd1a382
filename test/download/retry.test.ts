import { describe, expect, it } from 'vitest';
import { retryFailedShards, type FailedShard } from '../../src/download/retry.js';

/**
 * The retry rounds over a runner that fails some shards a given number of times. A shard failure that heals on
 * a second run cannot be produced for real (these tests run as root, so no permission fault either): the rerun
 * function stands in for the shard runner.
 */
function flakyRerun(failuresLeft: Map<number, number>) {
  const calls: number[][] = [];
  const rerun = async (failed: FailedShard[]) => {
    calls.push(failed.map((f) => f.shardId));
    const still: FailedShard[] = [];
    for (const { shardId } of failed) {
      const left = (failuresLeft.get(shardId) ?? 0) - 1;
      failuresLeft.set(shardId, left);
      if (left > 0) still.push({ shardId, message: `attempt failed, ${left} to go` });
    }
    return still;
  };
  return { rerun, calls };
}

const failed = (...ids: number[]): FailedShard[] => ids.map((shardId) => ({ shardId, message: 'first pass failed' }));

describe("--max-shard-retry (img2dataset's retrier)", () => {
  it('reruns only the shards the previous round left failed, up to the limit', async () => {
    // shard 1 fails once more after the main pass, shard 4 twice more, shard 7 never again
    const { rerun, calls } = flakyRerun(
      new Map([
        [1, 2],
        [4, 3],
        [7, 1],
      ]),
    );
    const rounds: [number, number][] = [];
    const result = await retryFailedShards(failed(1, 4, 7), 5, rerun, (round, n) => rounds.push([round, n]));
    expect(calls).toEqual([[1, 4, 7], [1, 4], [4]]);
    expect(rounds).toEqual([
      [1, 3],
      [2, 2],
      [3, 1],
    ]);
    expect(result).toEqual({ failed: [], rounds: 3 });
  });

  it('gives up after maxShardRetry rounds with the shards still failed; 0 rounds with 0 or nothing failed', async () => {
    const { rerun, calls } = flakyRerun(new Map([[2, 10]]));
    const result = await retryFailedShards(failed(2), 1, rerun);
    expect(calls).toEqual([[2]]);
    expect(result).toEqual({ failed: [{ shardId: 2, message: 'attempt failed, 9 to go' }], rounds: 1 });
    expect(await retryFailedShards(failed(2), 0, rerun)).toEqual({ failed: failed(2), rounds: 0 });
    expect(await retryFailedShards([], 3, rerun)).toEqual({ failed: [], rounds: 0 });
    expect(calls).toHaveLength(1);
  });
});
