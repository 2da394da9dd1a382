import type { Table } from '@lancedb/lancedb';
import type { IndexInfo } from './info.js';

/**
 * recall@10 of the ANN search against exact search, with up to 100 stored vectors as queries.
 * Raises nprobes / refine factor until recall ≥ 0.95 or the limits are reached; records the settings used.
 */
export async function measureRecall(table: Table, ann: Extract<IndexInfo['ann'], { type: 'ivf_pq' }>, dim: number): Promise<number> {
  const sample = await table.query().select(['vector']).limit(100).toArray();
  const queries = sample.map((r) => Float32Array.from(r.vector as Iterable<number>)).filter((v) => v.length === dim);
  // Exact answers once (a flat scan per query), then the cheapest ANN settings that reach the target.
  const truths: Set<string>[] = [];
  for (const q of queries) {
    const exact = await table.vectorSearch(q).column('vector').distanceType('dot').bypassVectorIndex().limit(10).select(['id', '_distance']).toArray();
    truths.push(new Set(exact.map((r) => String(r.id))));
  }
  let recall = 0;
  for (const [nprobes, refine] of [[20, 10], [50, 20], [100, 40], [ann.num_partitions, 50]] as const) {
    let hits = 0;
    let total = 0;
    for (const [i, q] of queries.entries()) {
      const approx = await table.vectorSearch(q).column('vector').distanceType('dot').nprobes(nprobes).refineFactor(refine).limit(10).select(['id', '_distance']).toArray();
      hits += approx.filter((r) => truths[i]!.has(String(r.id))).length;
      total += truths[i]!.size;
    }
    recall = total === 0 ? 1 : hits / total;
    ann.nprobes = nprobes;
    ann.refine_factor = refine;
    if (recall >= 0.95) break;
  }
  return recall;
}
