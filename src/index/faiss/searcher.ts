/**
 * Search over a parsed index tree: the pre-transform chain, then the inner index (Flat scanned in chunks from the
 * file, HNSW over its resident graph, IVF over lists read on demand), ids mapped through an IDMap. One shape for
 * top-k and range search: a TopK heap (started at the radius for a range search).
 */
import type { ByteSource } from '../../io/byte-source.js';
import { faissFileInvalid } from './cursor.js';
import type { FlatNode, HnswNode, IndexNode, IvfNode, Transform } from './format.js';
import { belowSink, CollectSink, RangeSink, TopK, type ResultSink } from './heap.js';
import { HnswSearcher } from './hnsw.js';
import { IvfSearcher, type IvfParams, type ListPart } from './ivf.js';
import { MatrixKernel } from './kernels.js';
import { applyChain, reverseChain, scanRows } from './vectors.js';

/** Vectors a top-level Flat scan reads at once (~1 MB at d = 64, 2 MB at 512). */
const FLAT_CHUNK_VECTORS = 1024;
/** A streaming range search hands over its results once it holds this many (and at its end). */
const BATCH_RESULTS = 65_536;
/** An HNSW range search explores as a top-1 search: what it finds is bounded by the nodes it visits. */
const HNSW_RANGE_LIMIT = 1 << 20;

export interface SearchSettings extends IvfParams {
  /** Results wanted: k, or maxResults for a range search. */
  k: number;
  /** Undefined: top-k. Otherwise only results strictly better than it (IP: > radius, L2: < radius). */
  radius?: number;
  /** Candidate-set size for HNSW: k for a top-k search, 1 for a range search (as faiss). */
  hnswK: number;
  /** Only results not as good as this (FaissSearchParams.below). */
  below?: number;
}

export interface Neighbours {
  ids: number[];
  distances: number[];
  /** Lists (IVF) or chunks (Flat) scanned so far, of all. */
  progress?: { done: number; total: number };
}

export interface Hits {
  ids: number[];
  distances: number[];
  /** Per hit, where its vector lives (IVF: list · 2^32 + offset; others: the storage position). */
  payloads: number[];
  /** A range search found more than its limit past the radius (the best were kept). */
  full: boolean;
}

export class TreeSearcher {
  private readonly hnsw: HnswSearcher | undefined;
  readonly ivf: IvfSearcher | undefined;
  readonly ip: boolean;
  readonly core: FlatNode | HnswNode | IvfNode;
  private readonly chain: Transform[];
  /** Per transform of the chain, its matrix in a WebAssembly kernel (linear transforms: OPQ, PCA). */
  private readonly chainKernels: (MatrixKernel | undefined)[];
  private readonly idMaps: Float64Array[];

  constructor(
    readonly root: IndexNode,
    /** The index file (a top-level Flat index's vectors). */
    readonly source: ByteSource,
    parts: ListPart[],
    listConcurrency: number,
    cacheBytes: number,
  ) {
    const { core, chain, idMaps } = unwrap(root);
    this.core = core;
    this.chain = chain;
    this.chainKernels = chain.map((t) => (t.kind === 'linear' ? MatrixKernel.of(t.A, t.dIn, t.dOut) : undefined));
    this.idMaps = idMaps;
    this.ip = core.header.metric === 'inner_product';
    if (core.kind === 'hnsw') this.hnsw = new HnswSearcher(core.graph, core.storage.vectors!, core.header.d, this.ip);
    if (core.kind === 'ivf') this.ivf = new IvfSearcher(core, parts, listConcurrency, cacheBytes);
  }

  async search(query: Float32Array, s: SearchSettings): Promise<Hits> {
    const x = this.chain.length > 0 ? applyChain(this.chain, query, this.chainKernels) : query;
    const kept = s.radius === undefined ? new TopK(s.k, this.ip) : new RangeSink(this.ip, s.radius, s.k);
    const sink = s.below === undefined ? kept : belowSink(kept, this.ip, s.below);
    const core = this.core;
    if (core.kind === 'ivf') await this.ivf!.search(x, sink, s);
    else if (core.kind === 'hnsw') this.hnsw!.search(x, sink, s.efSearch, s.hnswK);
    else await this.scanFlat(core, x, sink);
    const sorted = kept.sorted();
    const payloads = core.kind === 'ivf' ? sorted.payloads : sorted.ids;
    return {
      ids:
        this.idMaps.length > 0
          ? sorted.ids.map((id) => this.idMaps.reduce((inner, map) => map[inner]!, id))
          : sorted.ids,
      distances: sorted.distances,
      payloads,
      full: kept instanceof RangeSink && kept.truncated,
    };
  }

  /**
   * faiss's range search, streamed: every result strictly past `radius` in the lists probed (IVF), the vectors
   * (Flat) or the nodes visited (HNSW), in the order scanned (not sorted), in batches of about BATCH_RESULTS.
   */
  async *rangeBatches(query: Float32Array, radius: number, s: IvfParams): AsyncGenerator<Neighbours> {
    const x = this.chain.length > 0 ? applyChain(this.chain, query) : query;
    const core = this.core;
    const mapped = (b: Neighbours): Neighbours => ({
      ids: b.ids.map((id) => this.idMaps.reduce((inner, map) => map[inner]!, id)),
      distances: b.distances,
    });
    if (core.kind === 'hnsw') {
      const sink = new RangeSink(this.ip, radius, HNSW_RANGE_LIMIT);
      this.hnsw!.search(x, sink, s.efSearch, 1);
      const sorted = sink.sorted();
      yield mapped({ ids: sorted.ids, distances: sorted.distances });
      return;
    }
    const sink = new CollectSink(this.ip, radius);
    const steps = core.kind === 'ivf' ? this.ivf!.scan(x, sink, s) : this.flatChunks(core, x, sink);
    const total =
      core.kind === 'ivf' ? Math.min(s.nprobe, core.nlist) : Math.ceil(core.header.ntotal / FLAT_CHUNK_VECTORS);
    let done = 0;
    for await (const step of steps) {
      void step;
      done++;
      if (sink.ids.length >= BATCH_RESULTS) yield { ...mapped(sink.take()), progress: { done, total } };
    }
    yield { ...mapped(sink.take()), progress: { done: total, total } };
  }

  private async scanFlat(node: FlatNode, q: Float32Array, sink: ResultSink): Promise<void> {
    for await (const chunk of this.flatChunks(node, q, sink)) void chunk;
  }

  /** A top-level Flat index's vectors scanned into `sink` chunk by chunk (read ahead by one); yields after each. */
  private async *flatChunks(node: FlatNode, q: Float32Array, sink: ResultSink): AsyncGenerator<number> {
    const { d, ntotal } = node.header;
    let next: Promise<Float32Array> | undefined;
    const read = (start: number) => {
      const n = Math.min(FLAT_CHUNK_VECTORS, ntotal - start);
      const rows = new Float32Array(n * d);
      return this.source.readInto(node.vectorsOffset + start * d * 4, new Uint8Array(rows.buffer)).then(() => rows);
    };
    for (let start = 0; start < ntotal; start += FLAT_CHUNK_VECTORS) {
      const rows = await (next ?? read(start));
      next = start + FLAT_CHUNK_VECTORS < ntotal ? read(start + FLAT_CHUNK_VECTORS) : undefined;
      next?.catch(() => {});
      scanRows(q, rows, rows.length / d, d, this.ip, sink, start);
      yield start;
    }
  }

  /**
   * Whether a row's vector can be found from its id: a Flat or HNSW storage is in id order (through the id maps);
   * an IVF index keeps each row in one of its lists with no id → list map (finding one means reading every list's ids).
   */
  get reconstructsIds(): boolean {
    return this.core.kind !== 'ivf';
  }

  /** Vectors of the given ids (Flat, HNSW: see reconstructsIds), in the input space; unknown ids are left out. */
  async vectorsOfIds(ids: number[]): Promise<Map<number, Float32Array>> {
    if (!this.reconstructsIds) throw new Error('an IVF index cannot reconstruct a row from its id');
    const out = new Map<number, Float32Array>();
    for (const id of ids) {
      // The id maps reversed, outermost first: a position in each inner index.
      let p = Number.isSafeInteger(id) ? id : -1;
      for (let i = this.idMaps.length - 1; i >= 0 && p >= 0; i--) p = this.idMaps[i]!.indexOf(p);
      if (p < 0 || p >= this.core.header.ntotal) continue;
      out.set(id, (await this.reconstruct([p]))[0]!);
    }
    return out;
  }

  /** Vectors of search hits (their payloads), in the input space (the pre-transform reversed). */
  async reconstruct(payloads: number[]): Promise<Float32Array[]> {
    const core = this.core;
    const out: Float32Array[] = [];
    for (const p of payloads) {
      let v: Float32Array;
      if (core.kind === 'ivf') v = await this.ivf!.decode(p);
      else if (core.kind === 'hnsw') v = core.storage.vectors!.slice(p * core.header.d, (p + 1) * core.header.d);
      else {
        if (p < 0 || p >= core.header.ntotal) throw faissFileInvalid(`${this.source.name}: no vector at position ${p}`);
        v = new Float32Array(core.header.d);
        await this.source.readInto(core.vectorsOffset + p * core.header.d * 4, new Uint8Array(v.buffer));
      }
      out.push(this.chain.length > 0 ? reverseChain(this.chain, v) : v);
    }
    return out;
  }
}

/** The searched index inside the wrappers, the transforms to apply (in order) and the id maps (innermost first). */
export function unwrap(node: IndexNode): {
  core: FlatNode | HnswNode | IvfNode;
  chain: Transform[];
  idMaps: Float64Array[];
} {
  const chain: Transform[] = [];
  const idMaps: Float64Array[] = [];
  let at = node;
  while (at.kind === 'pretransform' || at.kind === 'idmap') {
    if (at.kind === 'pretransform') chain.push(...at.chain);
    else idMaps.unshift(at.idMap);
    at = at.inner;
  }
  return { core: at, chain, idMaps };
}
