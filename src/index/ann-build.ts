import * as lancedb from '@lancedb/lancedb';
import { indexInvalid, invalidOption } from '../core/errors.js';
import type { IndexInfo } from './info.js';

/**
 * Row count from which `auto` builds IVF-PQ. Measured with bench/index on the 2-core machine (512 dims, k=10):
 * flat p50 14.7 ms at 10 k rows, 24.1 ms at 30 k, 133 ms at 100 k; IVF-PQ at 100 k: 14–16 ms at recall@10 1.0.
 * Flat search stops paying for itself around 30 k rows.
 */
export const ANN_THRESHOLD = 30_000;

/** Rows per HNSW graph: one IVF partition each, all probed by default; bounds the memory of the build. */
const HNSW_PARTITION_ROWS = 250_000;

/** IVF-PQ trains 256 centroids per sub-vector (8-bit codes): LanceDB refuses to train on fewer rows. */
const PQ_MIN_ROWS = 256;

export type IndexType = 'auto' | 'flat' | 'ivf_pq' | 'ivf_hnsw_sq';

/** Refuses, before anything is imported, an ANN type that cannot be trained on `rows` rows. */
export function checkTrainable(type: Exclude<IndexType, 'auto'>, rows: number, source: string): void {
  if (type !== 'ivf_pq' || rows >= PQ_MIN_ROWS) return;
  throw invalidOption(
    `Expected at least ${PQ_MIN_ROWS} rows for --index-type ivf_pq (it trains 256 centroids per sub-vector) but ${source} has ${rows}`,
    {
      hint: 'Use --index-type flat (exact search; the default below 30 000 rows).',
    },
  );
}

/**
 * `auto`: exact below ANN_THRESHOLD, else IVF-PQ. IVF-HNSW-SQ answers a k=10 query 5 × faster at better recall
 * (bench/index, 1 M × 512: p50 4.3 ms at recall@10 0.96 vs 22.5 ms at 0.93) but a process must load its whole
 * graph before the first search (1 M rows: 3.6 s and 1.3 GB RSS, where IVF-PQ reads only the probed partitions:
 * 1.2 s, 0.35 GB), and a threshold search for tens of thousands of rows walks the graph with ef = limit. The
 * streaming loader opens the index in a fresh process and asks for exactly such searches, so HNSW is opt-in: for a
 * long-running `clipstream serve` whose latency matters.
 */
export function chooseIndexType(asked: IndexType, rows: number): Exclude<IndexType, 'auto'> {
  if (asked !== 'auto') return asked;
  return rows < ANN_THRESHOLD ? 'flat' : 'ivf_pq';
}

/** The ANN index of `type` over the whole table; LanceDB's failures become INDEX_INVALID without its Rust paths. */
export async function buildAnn(
  table: lancedb.Table,
  type: Exclude<IndexType, 'auto'>,
  rows: number,
  dim: number,
): Promise<IndexInfo['ann']> {
  try {
    return await createAnn(table, type, rows, dim);
  } catch (err) {
    // LanceDB's messages end with the Rust source path and repeat themselves after "Caused by:".
    const message = (err as Error).message
      .replace(/,\s*\/\S+\.rs:\d+:\d+/g, '')
      .replace(/\s+Caused by:[\s\S]*$/, '')
      .replace(/^lance error:\s*/, '');
    throw indexInvalid(`building the ${type} index failed: ${message}`, {
      hint: 'Nothing was kept; rerun with --index-type flat for exact search, which needs no training.',
      cause: err,
    });
  }
}

async function createAnn(
  table: lancedb.Table,
  type: Exclude<IndexType, 'auto'>,
  rows: number,
  dim: number,
): Promise<IndexInfo['ann']> {
  if (type === 'flat') return { type };
  if (type === 'ivf_hnsw_sq') {
    const numPartitions = Math.max(1, Math.ceil(rows / HNSW_PARTITION_ROWS));
    await table.createIndex('vector', {
      config: lancedb.Index.hnswSq({ numPartitions, distanceType: 'cosine' }),
      replace: true,
    });
    return { type, num_partitions: numPartitions, nprobes: numPartitions, ef: 80 };
  }
  const numPartitions = Math.max(1, Math.round(Math.sqrt(rows)));
  const numSubVectors = dim % 16 === 0 ? dim / 16 : dim % 8 === 0 ? dim / 8 : 1;
  await table.createIndex('vector', {
    config: lancedb.Index.ivfPq({ numPartitions, numSubVectors, distanceType: 'dot' }),
    replace: true,
  });
  return { type, num_partitions: numPartitions, num_sub_vectors: numSubVectors, nprobes: 20, refine_factor: 10 };
}
