import { invalidOption } from '../core/errors.js';
import type { Plan } from '../select/plan.js';

/** Partition `index` of `count` = rank × num_workers + worker of world_size × num_workers (rank-major). */
export interface Partition {
  index: number;
  count: number;
}

export function partitionOf(o: { rank: number; worldSize: number; worker: number; numWorkers: number }): Partition {
  const { rank, worldSize, worker, numWorkers } = o;
  for (const [name, v, min] of [
    ['world-size', worldSize, 1],
    ['num-workers', numWorkers, 1],
    ['rank', rank, 0],
    ['worker', worker, 0],
  ] as const) {
    if (!Number.isInteger(v) || v < min)
      throw invalidOption(`Expected an integer ≥ ${min} for --${name} but received ${v}`);
  }
  if (rank >= worldSize)
    throw invalidOption(
      `rank ${rank} is outside the world: --world-size is ${worldSize}, so ranks are 0…${worldSize - 1}`,
    );
  if (worker >= numWorkers)
    throw invalidOption(
      `worker ${worker} is outside the world: --num-workers is ${numWorkers}, so workers are 0…${numWorkers - 1}`,
    );
  return { index: rank * numWorkers + worker, count: worldSize * numWorkers };
}

/** Most partitions a run may have (world_size × num_workers): the one limit for flags, URLs and resume states. */
export const MAX_PARTITIONS = 1_000_000;

export function checkPartition(p: Partition): void {
  if (!Number.isInteger(p.count) || p.count < 1 || p.count > MAX_PARTITIONS)
    throw invalidOption(`Expected a partition count in 1…${MAX_PARTITIONS} but received ${p.count}`);
  if (!Number.isInteger(p.index) || p.index < 0 || p.index >= p.count) {
    throw invalidOption(
      `partition ${p.index} is outside the world: with ${p.count} partitions they are 0…${p.count - 1}`,
    );
  }
}

/** Samples per query in every partition: floor(count / P). */
export function quotas(plan: Plan, partitions: number): number[] {
  return plan.header.queries.map((q) => Math.floor(q.requested / partitions));
}
