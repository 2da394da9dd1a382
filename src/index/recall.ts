import type { Table } from '@lancedb/lancedb';
import { annQuery } from './ann.js';
import type { IvfHnswSq, IvfPq } from './info.js';

/** recall@10 the search settings must reach. */
export const TARGET_RECALL = 0.95;
const K = 10;
const NPROBES = [10, 20, 30, 50, 100, 200];
const REFINE = [2, 5, 10, 20, 40];
const EF = [20, 40, 80, 160, 320];

interface Setting {
  nprobes: number;
  /** refine factor (IVF-PQ) or ef (HNSW). */
  second: number;
}

/**
 * recall@10 of the ANN search against exact search, with up to 100 stored vectors as queries. Tries settings
 * (nprobes × refine factor for IVF-PQ, nprobes × ef for IVF-HNSW-SQ; both cost time: on a 1 M × 512 index refine
 * 20 doubles a k=10 query) and keeps the fastest that reaches TARGET_RECALL, else the best recall found; records
 * the settings chosen in `ann`.
 */
export async function measureRecall(table: Table, ann: IvfPq | IvfHnswSq, dim: number): Promise<number> {
  const sample = await table.query().select(['vector']).limit(100).toArray();
  const queries = sample.map((r) => Float32Array.from(r.vector as Iterable<number>)).filter((v) => v.length === dim);
  const truths: Set<string>[] = [];
  for (const q of queries) {
    const exact = await table
      .vectorSearch(q)
      .column('vector')
      .distanceType('dot')
      .bypassVectorIndex()
      .limit(K)
      .select(['id', '_distance'])
      .toArray();
    truths.push(new Set(exact.map((r) => String(r.id))));
  }
  const apply = ({ nprobes, second }: Setting) =>
    ann.type === 'ivf_pq' ? { ...ann, nprobes, refine_factor: second } : { ...ann, nprobes, ef: second };
  const measure = async (setting: Setting) => {
    const settings = apply(setting);
    let hits = 0;
    let total = 0;
    const start = performance.now();
    for (const [i, q] of queries.entries()) {
      const approx = await annQuery(table.vectorSearch(q).column('vector'), settings, K)
        .limit(K)
        .select(['id', '_distance'])
        .toArray();
      hits += approx.filter((r) => truths[i]!.has(String(r.id))).length;
      total += truths[i]!.size;
    }
    return {
      ...setting,
      recall: total === 0 ? 1 : hits / total,
      ms: (performance.now() - start) / Math.max(1, queries.length),
    };
  };

  const probeGrid = ann.type === 'ivf_pq' ? NPROBES : [1, 2, 3, 4, 6, 8];
  const probes = [...new Set([...probeGrid.filter((n) => n < ann.num_partitions), ann.num_partitions])];
  let fastest: Awaited<ReturnType<typeof measure>> | undefined;
  let best: Awaited<ReturnType<typeof measure>> | undefined;
  for (const nprobes of probes) {
    for (const second of ann.type === 'ivf_pq' ? REFINE : EF) {
      const m = await measure({ nprobes, second });
      if (!best || m.recall > best.recall) best = m;
      if (m.recall >= TARGET_RECALL) {
        if (!fastest || m.ms < fastest.ms) fastest = m;
        break; // a wider search only costs time
      }
      if (fastest && m.ms > fastest.ms) break;
    }
    // More probes cost more than this passing setting already does: stop.
    if (fastest && fastest.nprobes < nprobes) break;
  }
  const chosen = fastest ?? best!;
  Object.assign(ann, apply(chosen));
  return chosen.recall;
}
