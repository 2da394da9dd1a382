import type { VectorQuery } from '@lancedb/lancedb';
import type { IvfHnswSq, IvfPq } from './info.js';

/**
 * The distance an ANN index is trained and searched with. LanceDB's HNSW on dot distance finds almost nothing
 * (recall@10 0.04 on clustered unit vectors), so HNSW uses cosine: it is built only on unit vectors, where
 * 1 - cosine distance is the dot product.
 */
const annDistance = (ann: IvfPq | IvfHnswSq) => (ann.type === 'ivf_hnsw_sq' ? 'cosine' : 'dot');

/** The ANN search of `ann` with its current settings, as every search of the index runs it. */
export function annQuery(query: VectorQuery, ann: IvfPq | IvfHnswSq, limit: number): VectorQuery {
  query = query.distanceType(annDistance(ann));
  if (ann.type === 'ivf_pq') return query.nprobes(ann.nprobes).refineFactor(ann.refine_factor);
  // Refine 1: exact similarities for the rows returned (the scalar-quantized ones are off by up to a few hundredths).
  return query.nprobes(ann.nprobes).ef(Math.max(ann.ef, limit)).refineFactor(1);
}
