/** Human descriptions of a parsed index (faiss factory style) and the bytes its resident structures take. */
import type { IndexNode, Transform } from './format.js';

function transformName(t: Transform): string {
  if (t.kind === 'linear') {
    const name = t.tag === 'LTra' ? 'LT' : t.tag === 'rrot' ? 'RR' : 'PCA';
    return `${name}${t.dIn}_${t.dOut}`;
  }
  if (t.kind === 'remap') return `Pad${t.dOut}`;
  return t.kind === 'normalize' ? 'L2norm' : 'Center';
}

/**
 * e.g. "LT64_128,IVF256_HNSW32,PQ16x8": an OPQ matrix is stored as a plain linear transform (LT), so its M is not
 * in the file; HNSW's M is read from its level-0 neighbour slots (2·M).
 */
export function describe(node: IndexNode): string {
  switch (node.kind) {
    case 'flat':
      return 'Flat';
    case 'hnsw':
      return `HNSW${(node.graph.cum[1]! - node.graph.cum[0]!) / 2}`;
    case 'pretransform':
      return [...node.chain.map(transformName), describe(node.inner)].join(',');
    case 'idmap':
      return `IDMap${node.tag === 'IxM2' ? '2' : ''},${describe(node.inner)}`;
    case 'ivf': {
      const q = node.quantizer.kind === 'hnsw' ? `_${describe(node.quantizer)}` : '';
      const codes = node.pq ? `PQ${node.pq.M}x${node.pq.nbits}${node.byResidual ? '' : '(no residual)'}` : 'Flat';
      return `IVF${node.nlist}${q},${codes}`;
    }
  }
}

export function residentBytes(node: IndexNode): number {
  switch (node.kind) {
    case 'flat':
      return node.vectors?.byteLength ?? 0;
    case 'hnsw': {
      const g = node.graph;
      return (
        g.cum.byteLength +
        g.levels.byteLength +
        g.offsets.byteLength +
        g.neighbors.byteLength +
        residentBytes(node.storage)
      );
    }
    case 'pretransform':
      return (
        node.chain.reduce((sum, t) => sum + (t.kind === 'linear' ? t.A.byteLength + (t.b?.byteLength ?? 0) : 0), 0) +
        residentBytes(node.inner)
      );
    case 'idmap':
      return node.idMap.byteLength + residentBytes(node.inner);
    case 'ivf':
      return residentBytes(node.quantizer) + (node.pq?.centroids.byteLength ?? 0);
  }
}
