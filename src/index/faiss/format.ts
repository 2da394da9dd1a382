/**
 * faiss's on-disk index format (faiss/impl/index_write.cpp), read into the structures every search needs: the
 * pre-transform, flat quantizer / HNSW graph vectors, PQ codebooks, and each inverted list's offset and size.
 * List contents (and a top-level Flat index's vectors) are left on disk: only their place is recorded.
 *
 * Read: IxFI / IxF2 / IxFl (Flat, IP or L2), IHNf (HNSW, flat storage), IwFl (IVF-Flat), IwPQ (IVF-PQ, 8-bit codes),
 * IxPT (pre-transform chain: LTra (OPQ), rrot, PCA, RmDT, VNrm, VCnt), IxMp / IxM2 (IDMap), inverted lists ilar
 * (inline, full or sparse) and ilod (OnDiskInvertedLists: a separate .ivfdata file). Any other tag → INDEX_INVALID
 * naming the tag and the file.
 */
import { Cursor, faissFileInvalid } from './cursor.js';

export type Metric = 'inner_product' | 'l2';

export interface Header {
  d: number;
  ntotal: number;
  metric: Metric;
}

/** A byte range of a skimmed part's trained structure, compared with the first part's (index-parts). */
export interface Region {
  what: string;
  offset: number;
  length: number;
}

export interface FlatNode {
  kind: 'flat';
  tag: string;
  header: Header;
  /** Resident vectors (quantizers, HNSW storage); undefined for a top-level Flat index, read on demand. */
  vectors: Float32Array | undefined;
  /** Byte offset of vector 0 in the file. */
  vectorsOffset: number;
}

export interface HnswGraph {
  /** Cumulative neighbour slots per level: level l of node i is neighbors[offsets[i] + cum[l] .. offsets[i] + cum[l+1]). */
  cum: Int32Array;
  levels: Int32Array;
  offsets: Float64Array;
  neighbors: Int32Array;
  entryPoint: number;
  maxLevel: number;
  efSearch: number;
  efConstruction: number;
}

export interface HnswNode {
  kind: 'hnsw';
  tag: string;
  header: Header;
  graph: HnswGraph;
  storage: FlatNode;
}

export interface ProductQuantizer {
  d: number;
  M: number;
  nbits: number;
  ksub: number;
  dsub: number;
  /** (M, ksub, dsub): centroid j of sub-quantizer m starts at (m·ksub + j)·dsub. */
  centroids: Float32Array;
}

export interface InvertedLists {
  kind: 'inline' | 'ondisk' | 'none';
  nlist: number;
  codeSize: number;
  /** Byte offset of list i's codes (its ids follow `capacities[i]` codes later); −1 for a list never written. */
  offsets: Float64Array;
  sizes: Float64Array;
  capacities: Float64Array;
  /** ilod: the .ivfdata path as stored at merge time (only its base name is used, next to the index). */
  dataFile?: string;
  /** ilod: the data file's size as recorded. */
  totalSize?: number;
}

export interface IvfNode {
  kind: 'ivf';
  tag: 'IwFl' | 'IwPQ';
  header: Header;
  nlist: number;
  nprobe: number;
  quantizer: FlatNode | HnswNode;
  byResidual: boolean;
  codeSize: number;
  pq: ProductQuantizer | undefined;
  lists: InvertedLists;
  /** 0 none, 1 array, 2 hashtable (not read: reconstruction goes through search results). */
  directMap: number;
}

export type Transform =
  | { kind: 'linear'; tag: string; dIn: number; dOut: number; A: Float32Array; b: Float32Array | undefined }
  | { kind: 'remap'; dIn: number; dOut: number; map: Int32Array }
  | { kind: 'normalize'; dIn: number; dOut: number }
  | { kind: 'center'; dIn: number; dOut: number; mean: Float32Array };

export interface PreTransformNode {
  kind: 'pretransform';
  header: Header;
  chain: Transform[];
  inner: IndexNode;
}

export interface IdMapNode {
  kind: 'idmap';
  tag: string;
  header: Header;
  inner: IndexNode;
  idMap: Float64Array;
}

export type IndexNode = FlatNode | HnswNode | IvfNode | PreTransformNode | IdMapNode;

/** Index tags faiss writes that this reader does not search, with their class names for the message. */
const KNOWN_UNSUPPORTED: Record<string, string> = {
  IwSq: 'IndexIVFScalarQuantizer',
  IwSQ: 'IndexIVFScalarQuantizer',
  IwQR: 'IndexIVFPQR',
  IxSQ: 'IndexScalarQuantizer',
  IxPq: 'IndexPQ',
  IxPo: 'IndexPQ',
  IHNp: 'IndexHNSWPQ',
  IHNs: 'IndexHNSWSQ',
  IHN2: 'IndexHNSW2Level',
  IHNc: 'IndexHNSWCagra',
  IHc2: 'IndexHNSWCagra',
  IHfP: 'IndexHNSWFlatPanorama',
  IxRF: 'IndexRefineFlat',
  IxLS: 'IndexLSH',
  IwLS: 'IndexIVFLocalSearchQuantizer',
  IwRQ: 'IndexIVFResidualQuantizer',
  IxSh: 'IndexShards',
  IvFl: 'legacy IndexIVFFlat',
  IvFL: 'legacy IndexIVFFlat',
  IvPQ: 'legacy IndexIVFPQ',
  IvSQ: 'legacy IndexIVFSQ',
  IBxF: 'IndexBinaryFlat',
  IBwF: 'IndexBinaryIVF',
  IBHf: 'IndexBinaryHNSW',
  IwPF: 'IndexIVFPQFastScan',
  IPfs: 'IndexPQFastScan',
  IxNS: 'IndexNSG',
  INSf: 'IndexNSGFlat',
  null: 'a null index',
};

const SUPPORTED = 'Flat, HNSW (flat storage), IVF-Flat, IVF-PQ (8-bit codes), OPQ/PCA pre-transforms and IDMap';
const MAX_DEPTH = 8;

export interface ParseOptions {
  /** Skip trained structures instead of loading them (later index parts); their regions are recorded either way. */
  skim?: boolean;
}

export class Parser {
  readonly regions: Region[] = [];

  constructor(
    readonly cursor: Cursor,
    readonly opts: ParseOptions = {},
  ) {}

  private fail(message: string) {
    return this.cursor.fail(message);
  }

  /** A resident float array, or (skimming) its region skipped. */
  private async resident(n: number, what: string): Promise<Float32Array> {
    this.regions.push({ what, offset: this.cursor.position, length: n * 4 });
    if (!this.opts.skim) return this.cursor.floats(n);
    this.cursor.skip(n * 4, what);
    return new Float32Array(0);
  }

  async header(): Promise<Header> {
    const c = this.cursor;
    const d = await c.i32();
    if (d < 0 || d > 1 << 20) throw this.fail(`dimension ${d} is out of range`);
    const ntotal = await c.count('ntotal');
    await c.i64('dummy');
    await c.i64('dummy');
    await c.bool();
    const metricCode = await c.i32();
    if (metricCode !== 0 && metricCode !== 1) {
      throw faissFileInvalid(
        `${c.source.name}: metric type ${metricCode} is not supported (only inner product (0) and L2 (1))`,
      );
    }
    return { d, ntotal, metric: metricCode === 0 ? 'inner_product' : 'l2' };
  }

  async index(depth = 0, resident = false): Promise<IndexNode> {
    if (depth > MAX_DEPTH) throw this.fail(`index records nested deeper than ${MAX_DEPTH}`);
    const at = this.cursor.position;
    const tag = await this.cursor.fourcc();
    switch (tag) {
      case 'IxFI':
      case 'IxF2':
      case 'IxFl':
        return this.flat(tag, resident);
      case 'IHNf':
        return this.hnsw(tag, depth);
      case 'IwFl':
      case 'IwPQ':
        return this.ivf(tag, depth);
      case 'IxPT':
        return this.preTransform(depth);
      case 'IxMp':
      case 'IxM2':
        return this.idMap(tag, depth);
      default: {
        const printable = /^[\x20-\x7e]{4}$/.test(tag) ? `'${tag}'` : `0x${Buffer.from(tag, 'latin1').toString('hex')}`;
        const known = KNOWN_UNSUPPORTED[tag];
        throw faissFileInvalid(
          `${this.cursor.source.name}: faiss index type ${printable}${known ? ` (${known})` : ''} at byte ${at} is not supported`,
          known
            ? `clipstream reads ${SUPPORTED}.`
            : `Not a faiss index written by write_index? clipstream reads ${SUPPORTED}.`,
        );
      }
    }
  }

  private async flat(tag: string, resident: boolean): Promise<FlatNode> {
    const header = await this.header();
    const n = await this.cursor.vectorLength(4, 'flat vectors');
    if (n !== header.ntotal * header.d)
      throw this.fail(`flat index holds ${n} floats, expected ntotal × d = ${header.ntotal * header.d}`);
    const vectorsOffset = this.cursor.position;
    if (resident) return { kind: 'flat', tag, header, vectors: await this.resident(n, 'flat vectors'), vectorsOffset };
    this.cursor.skip(n * 4, 'flat vectors');
    return { kind: 'flat', tag, header, vectors: undefined, vectorsOffset };
  }

  private async hnsw(tag: string, depth: number): Promise<HnswNode> {
    const c = this.cursor;
    const header = await this.header();
    c.skip((await c.vectorLength(8, 'assign_probas')) * 8, 'assign_probas');
    const cum = await c.int32Vector('cum_nneighbor_per_level');
    const levels = await c.int32Vector('levels');
    const offsets = await c.int64Vector('offsets');
    const neighborCount = await c.vectorLength(4, 'neighbors');
    const neighbors = this.opts.skim
      ? (c.skip(neighborCount * 4, 'neighbors'), new Int32Array(0))
      : await c.fill(new Int32Array(neighborCount));
    const entryPoint = await c.i32();
    const maxLevel = await c.i32();
    const efConstruction = await c.i32();
    const efSearch = await c.i32();
    await c.i32(); // upper_beam, deprecated
    const graph: HnswGraph = { cum, levels, offsets, neighbors, entryPoint, maxLevel, efSearch, efConstruction };
    if (!this.opts.skim) validateGraph(graph, header.ntotal, neighborCount, (m) => this.fail(m));
    const storage = await this.index(depth + 1, true);
    if (storage.kind !== 'flat' || storage.header.d !== header.d || storage.header.ntotal !== header.ntotal) {
      throw this.fail(`HNSW storage must be a flat index of ${header.ntotal} × ${header.d}`);
    }
    return { kind: 'hnsw', tag, header, graph, storage };
  }

  private async ivf(tag: 'IwFl' | 'IwPQ', depth: number): Promise<IvfNode> {
    const c = this.cursor;
    const header = await this.header();
    const nlist = await c.count('nlist');
    const nprobe = await c.count('nprobe');
    const quantizer = await this.index(depth + 1, true);
    if (
      (quantizer.kind !== 'flat' && quantizer.kind !== 'hnsw') ||
      quantizer.header.d !== header.d ||
      quantizer.header.ntotal !== nlist
    ) {
      throw this.fail(`the IVF quantizer must be a Flat or HNSW index of nlist (${nlist}) × d (${header.d}) vectors`);
    }
    const directMap = await c.u8();
    c.skip((await c.vectorLength(8, 'direct map')) * 8, 'direct map');
    if (directMap === 2) c.skip((await c.vectorLength(16, 'direct map hashtable')) * 16, 'direct map hashtable');
    else if (directMap > 2) throw this.fail(`direct map type ${directMap} is not 0, 1 or 2`);
    let byResidual = false;
    let codeSize = header.d * 4;
    let pq: ProductQuantizer | undefined;
    if (tag === 'IwPQ') {
      byResidual = await c.bool();
      codeSize = await c.count('code_size');
      pq = await this.productQuantizer(header.d);
      if (codeSize !== pq.M) throw this.fail(`code_size ${codeSize} does not match the PQ's ${pq.M} bytes`);
    }
    const lists = await this.invertedLists(nlist, codeSize);
    return { kind: 'ivf', tag, header, nlist, nprobe, quantizer, byResidual, codeSize, pq, lists, directMap };
  }

  private async productQuantizer(d: number): Promise<ProductQuantizer> {
    const c = this.cursor;
    const pqD = await c.count('PQ d');
    const M = await c.count('PQ M');
    const nbits = await c.count('PQ nbits');
    if (pqD !== d || M === 0 || d % M !== 0)
      throw this.fail(`PQ of d ${pqD} and M ${M} does not fit the index's d ${d}`);
    if (nbits !== 8) {
      throw faissFileInvalid(
        `${c.source.name}: PQ codes of ${nbits} bits are not supported (autofaiss and LAION use PQ{M}x8)`,
      );
    }
    const n = await c.vectorLength(4, 'PQ centroids');
    if (n !== d * 256) throw this.fail(`PQ holds ${n} centroid floats, expected d × 256 = ${d * 256}`);
    return { d, M, nbits, ksub: 256, dsub: d / M, centroids: await this.resident(n, 'PQ centroids') };
  }

  private async invertedLists(nlist: number, codeSize: number): Promise<InvertedLists> {
    const c = this.cursor;
    const tag = await c.fourcc();
    const empty = () => new Float64Array(nlist);
    if (tag === 'il00')
      return { kind: 'none', nlist, codeSize, offsets: empty().fill(-1), sizes: empty(), capacities: empty() };
    if (tag !== 'ilar' && tag !== 'ilod') {
      throw faissFileInvalid(
        `${c.source.name}: inverted lists of type '${tag}' are not supported (only inline 'ilar' and on-disk 'ilod')`,
      );
    }
    const n = await c.count('invlists nlist');
    const size = await c.count('invlists code_size');
    if (n !== nlist || size !== codeSize)
      throw this.fail(`inverted lists of ${n} × ${size} bytes do not match the IVF's ${nlist} × ${codeSize}`);
    return tag === 'ilar' ? this.arrayLists(nlist, codeSize) : this.onDiskLists(nlist, codeSize);
  }

  private async arrayLists(nlist: number, codeSize: number): Promise<InvertedLists> {
    const c = this.cursor;
    const sizes = new Float64Array(nlist);
    const type = await c.fourcc();
    if (type === 'full') {
      const read = await c.int64Vector('list sizes');
      if (read.length !== nlist) throw this.fail(`${read.length} list sizes for ${nlist} lists`);
      sizes.set(read);
    } else if (type === 'sprs') {
      const pairs = await c.int64Vector('sparse list sizes');
      if (pairs.length % 2 !== 0) throw this.fail('odd number of sparse list size entries');
      for (let j = 0; j < pairs.length; j += 2) {
        if (pairs[j]! < 0 || pairs[j]! >= nlist)
          throw this.fail(`sparse list number ${pairs[j]} is not below nlist ${nlist}`);
        sizes[pairs[j]!] = pairs[j + 1]!;
      }
    } else {
      throw this.fail(`list size type '${type}' is neither 'full' nor 'sprs'`);
    }
    const offsets = new Float64Array(nlist).fill(-1);
    let at = c.position;
    for (let i = 0; i < nlist; i++) {
      if (sizes[i]! < 0) throw this.fail(`list ${i} has a negative size`);
      if (sizes[i] === 0) continue;
      offsets[i] = at;
      at += sizes[i]! * (codeSize + 8);
      if (at > c.source.size)
        throw this.fail(`list ${i} of ${sizes[i]} entries ends past the end of the file (${c.source.size} bytes)`);
    }
    c.skip(at - c.position, 'list contents');
    return { kind: 'inline', nlist, codeSize, offsets, sizes, capacities: sizes };
  }

  private async onDiskLists(nlist: number, codeSize: number): Promise<InvertedLists> {
    const c = this.cursor;
    const count = await c.vectorLength(24, 'on-disk lists');
    if (count !== nlist) throw this.fail(`${count} on-disk list entries for ${nlist} lists`);
    const triples = await c.int64s(3 * nlist, 'on-disk lists');
    const sizes = new Float64Array(nlist);
    const capacities = new Float64Array(nlist);
    const offsets = new Float64Array(nlist);
    for (let i = 0; i < nlist; i++) {
      sizes[i] = triples[3 * i]!;
      capacities[i] = triples[3 * i + 1]!;
      offsets[i] = triples[3 * i + 2]!;
      if (sizes[i]! < 0 || capacities[i]! < sizes[i]! || (sizes[i]! > 0 && offsets[i]! < 0)) {
        throw this.fail(`on-disk list ${i} has size ${sizes[i]}, capacity ${capacities[i]}, offset ${offsets[i]}`);
      }
    }
    c.skip((await c.vectorLength(16, 'on-disk slots')) * 16, 'on-disk slots');
    const nameLength = await c.vectorLength(1, 'ivfdata file name');
    if (nameLength > 4096) throw this.fail(`ivfdata file name of ${nameLength} bytes`);
    const dataFile = Buffer.from(await c.fill(new Uint8Array(nameLength))).toString('utf8');
    const totalSize = await c.count('ivfdata size');
    for (let i = 0; i < nlist; i++) {
      if (sizes[i]! > 0 && offsets[i]! + capacities[i]! * (codeSize + 8) > totalSize) {
        throw this.fail(
          `on-disk list ${i} (${sizes[i]} entries at byte ${offsets[i]}) ends past the data file's recorded size ${totalSize}`,
        );
      }
    }
    return { kind: 'ondisk', nlist, codeSize, offsets, sizes, capacities, dataFile, totalSize };
  }

  private async preTransform(depth: number): Promise<PreTransformNode> {
    const c = this.cursor;
    const header = await this.header();
    const nt = await c.i32();
    if (nt < 0 || nt > 16) throw this.fail(`pre-transform chain of ${nt} transforms`);
    const chain: Transform[] = [];
    for (let i = 0; i < nt; i++) chain.push(await this.transform());
    const inner = await this.index(depth + 1);
    let d = header.d;
    for (const t of chain) {
      if (t.dIn !== d) throw this.fail(`pre-transform expects ${t.dIn} dimensions but receives ${d}`);
      d = t.dOut;
    }
    if (d !== inner.header.d)
      throw this.fail(`pre-transform gives ${d} dimensions but the inner index has ${inner.header.d}`);
    return { kind: 'pretransform', header, chain, inner };
  }

  private async transform(): Promise<Transform> {
    const c = this.cursor;
    const tag = await c.fourcc();
    if (tag === 'LTra' || tag === 'rrot' || tag === 'Pcam' || tag === 'PcAm' || tag === 'PCAm') {
      if (tag !== 'LTra' && tag !== 'rrot') {
        await c.f32(); // eigen_power
        if (tag === 'Pcam') await c.f32(); // epsilon
        await c.bool(); // random_rotation
        if (tag !== 'PCAm') await c.i32(); // balanced_bins
        for (const what of ['PCA mean', 'PCA eigenvalues', 'PCA matrix'])
          c.skip((await c.vectorLength(4, what)) * 4, what);
      }
      const haveBias = await c.bool();
      const aLength = await c.vectorLength(4, 'transform matrix');
      const A = await this.resident(aLength, 'transform matrix');
      const bLength = await c.vectorLength(4, 'transform bias');
      const b = bLength > 0 ? await this.resident(bLength, 'transform bias') : undefined;
      const { dIn, dOut } = await this.transformTail();
      if (aLength !== dIn * dOut) throw this.fail(`transform matrix of ${aLength} floats, expected ${dOut} × ${dIn}`);
      if (haveBias && bLength !== dOut) throw this.fail(`transform bias of ${bLength} floats, expected ${dOut}`);
      return { kind: 'linear', tag, dIn, dOut, A, b: haveBias ? b : undefined };
    }
    if (tag === 'RmDT') {
      const map = await c.int32Vector('dimension map');
      const { dIn, dOut } = await this.transformTail();
      if (map.length !== dOut || map.some((j) => j >= dIn))
        throw this.fail('dimension map does not fit its dimensions');
      return { kind: 'remap', dIn, dOut, map };
    }
    if (tag === 'VNrm') {
      const norm = await c.f32();
      const { dIn, dOut } = await this.transformTail();
      if (norm !== 2 || dIn !== dOut) throw this.fail(`normalization with norm ${norm} is not supported (only L2)`);
      return { kind: 'normalize', dIn, dOut };
    }
    if (tag === 'VCnt') {
      const mean = await c.floatVector('centering mean');
      const { dIn, dOut } = await this.transformTail();
      if (mean.length !== dIn || dIn !== dOut) throw this.fail('centering mean does not fit its dimensions');
      return { kind: 'center', dIn, dOut, mean };
    }
    throw faissFileInvalid(
      `${c.source.name}: vector transform '${tag}' at byte ${c.position - 4} is not supported`,
      `clipstream reads ${SUPPORTED}.`,
    );
  }

  private async transformTail(): Promise<{ dIn: number; dOut: number }> {
    const dIn = await this.cursor.i32();
    const dOut = await this.cursor.i32();
    await this.cursor.bool();
    if (dIn <= 0 || dOut <= 0 || dIn > 1 << 20 || dOut > 1 << 20)
      throw this.fail(`transform dimensions ${dIn} → ${dOut}`);
    return { dIn, dOut };
  }

  private async idMap(tag: string, depth: number): Promise<IdMapNode> {
    const header = await this.header();
    const inner = await this.index(depth + 1);
    const idMap = await this.cursor.int64Vector('id map');
    if (idMap.length !== header.ntotal || inner.header.ntotal !== header.ntotal) {
      throw this.fail(
        `id map of ${idMap.length} ids for ${header.ntotal} vectors (inner index: ${inner.header.ntotal})`,
      );
    }
    return { kind: 'idmap', tag, header, inner, idMap };
  }
}

function validateGraph(g: HnswGraph, ntotal: number, neighborCount: number, fail: (m: string) => Error): void {
  if (g.levels.length !== ntotal || g.offsets.length !== ntotal + 1)
    throw fail(`HNSW graph sized for ${g.levels.length} nodes, the index has ${ntotal}`);
  if (g.cum.length < 2 || g.cum[0] !== 0) throw fail('HNSW neighbour counts per level are malformed');
  if (ntotal > 0 && (g.entryPoint < 0 || g.entryPoint >= ntotal))
    throw fail(`HNSW entry point ${g.entryPoint} is not a node`);
  if (g.maxLevel < 0 || g.maxLevel >= g.cum.length - 1) throw fail(`HNSW max level ${g.maxLevel} is out of range`);
  for (let i = 0; i < ntotal; i++) {
    const level = g.levels[i]!;
    if (level < 1 || level >= g.cum.length || g.offsets[i + 1]! - g.offsets[i]! !== g.cum[level]) {
      throw fail(
        `HNSW node ${i} has ${level} levels and ${g.offsets[i + 1]! - g.offsets[i]!} neighbour slots, which do not agree`,
      );
    }
  }
  if (g.offsets[ntotal] !== neighborCount)
    throw fail(`HNSW offsets end at ${g.offsets[ntotal]}, the neighbour array holds ${neighborCount}`);
  for (let j = 0; j < neighborCount; j++) {
    if (g.neighbors[j]! >= ntotal || g.neighbors[j]! < -1)
      throw fail(`HNSW neighbour slot ${j} holds ${g.neighbors[j]}, not a node`);
  }
}
