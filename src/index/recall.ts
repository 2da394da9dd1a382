import type { Table } from '@lancedb/lancedb';
import type { IndexInfo } from './info.js';

/** recall@10 the search settings must reach. */
export const TARGET_RECALL = 0.95;
const NPROBES = [10, 20, 30, 50, 100, 200];
const REFINE = [2, 5, 10, 20, 40];

/**
 * recall@10 of the ANN search against exact search, with up to 100 stored vectors as queries. Tries nprobes ×
 * refine factor settings and keeps the fastest that reaches TARGET_RECALL (both cost time: on a 1 M × 512 index,
 * refine 20 doubles a k=10 query), else the best recall found; records the settings chosen in `ann`.
 */
export async function measureRecall(table: Table, ann: Extract<IndexInfo['ann'], { type: 'ivf_pq' }>, dim: number): Promise<number> {
  const sample = await table.query().select(['vector']).limit(100).toArray();
  const queries = sample.map((r) => Float32Array.from(r.vector as Iterable<number>)).filter((v) => v.length === dim);
  const truths: Set<string>[] = [];
  for (const q of queries) {
    const exact = await table.vectorSearch(q).column('vector').distanceType('dot').bypassVectorIndex().limit(10).select(['id', '_distance']).toArray();
    truths.push(new Set(exact.map((r) => String(r.id))));
  }
  const measure = async (nprobes: number, refine: number) => {
    let hits = 0;
    let total = 0;
    const start = performance.now();
    for (const [i, q] of queries.entries()) {
      const approx = await table.vectorSearch(q).column('vector').distanceType('dot').nprobes(nprobes).refineFactor(refine).limit(10).select(['id', '_distance']).toArray();
      hits += approx.filter((r) => truths[i]!.has(String(r.id))).length;
      total += truths[i]!.size;
    }
    return { nprobes, refine, recall: total === 0 ? 1 : hits / total, ms: (performance.now() - start) / Math.max(1, queries.length) };
  };

  const probes = [...new Set([...NPROBES.filter((n) => n < ann.num_partitions), ann.num_partitions])];
  let fastest: Awaited<ReturnType<typeof measure>> | undefined;
  let best: Awaited<ReturnType<typeof measure>> | undefined;
  for (const nprobes of probes) {
    for (const refine of REFINE) {
      const m = await measure(nprobes, refine);
      if (!best || m.recall > best.recall) best = m;
      if (m.recall >= TARGET_RECALL) {
        if (!fastest || m.ms < fastest.ms) fastest = m;
        break; // more refinement only costs time
      }
      if (fastest && m.ms > fastest.ms) break;
    }
    // More probes cost more than this passing setting already does: stop.
    if (fastest && fastest.nprobes < nprobes) break;
  }
  const chosen = fastest ?? best!;
  ann.nprobes = chosen.nprobes;
  ann.refine_factor = chosen.refine;
  return chosen.recall;
}
