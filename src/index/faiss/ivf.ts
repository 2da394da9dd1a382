/**
 * IVF search as faiss does it (IndexIVF::search_preassigned): the coarse quantizer's top-nprobe lists, visited in
 * rank order, each list's entries in stored order, one result heap across lists. Lists are read on demand (a few
 * ahead of the scan, in parallel) from the index file, its .ivfdata file, or every index part in turn.
 * Scores: IVF-Flat ⟨q, x⟩ or ‖q − x‖²; IVF-PQ by residual with inner product: ⟨q, c_L⟩ + Σ_m T[m][code_m] with
 * T[m][j] = ⟨q_m, C_m[j]⟩ (faiss's IP tables); with L2: Σ_m ‖(q − c_L)_m − C_m[j]‖² (the residual's distance table).
 */
import type { ByteSource } from '../../io/byte-source.js';
import { faissFileInvalid } from './cursor.js';
import type { InvertedLists, IvfNode, ProductQuantizer } from './format.js';
import { TopK, type ResultSink } from './heap.js';
import { HnswSearcher } from './hnsw.js';
import { MatrixKernel, PqScanKernel } from './kernels.js';
import { ListCache, type ListContent } from './list-cache.js';
import { dot, l2sq, scanRows } from './vectors.js';

/** One index file's (or index part's) lists, and where their bytes are. */
export interface ListPart {
  source: ByteSource;
  lists: InvertedLists;
}

const EMPTY: ListContent = { n: 0, codes: new Uint8Array(0), ids: new Int32Array(0) };

export async function readList(parts: ListPart[], list: number, codeSize: number): Promise<ListContent> {
  const pieces = await Promise.all(parts.map((p) => readListPart(p, list, codeSize)));
  const kept = pieces.filter((p) => p.n > 0);
  if (kept.length <= 1) return kept[0] ?? EMPTY;
  const n = kept.reduce((sum, p) => sum + p.n, 0);
  const codes = new Uint8Array(n * codeSize);
  const ids = new Int32Array(2 * n);
  let at = 0;
  for (const p of kept) {
    codes.set(p.codes, at * codeSize);
    ids.set(p.ids, 2 * at);
    at += p.n;
  }
  return { n, codes, ids };
}

async function readListPart({ source, lists }: ListPart, list: number, codeSize: number): Promise<ListContent> {
  const n = lists.sizes[list]!;
  if (n === 0) return EMPTY;
  const offset = lists.offsets[list]!;
  const capacity = lists.capacities[list]!;
  if (offset + capacity * (codeSize + 8) > source.size) {
    throw faissFileInvalid(
      `${source.name}: inverted list ${list} (${n} entries at byte ${offset}) ends past the end of the file (${source.size} bytes)`,
    );
  }
  if (capacity === n && (n * codeSize) % 4 === 0) {
    const bytes = new Uint8Array(n * (codeSize + 8));
    await source.readInto(offset, bytes);
    return { n, codes: bytes.subarray(0, n * codeSize), ids: new Int32Array(bytes.buffer, n * codeSize, 2 * n) };
  }
  const codes = new Uint8Array(n * codeSize);
  const ids = new Int32Array(2 * n);
  await Promise.all([
    source.readInto(offset, codes),
    source.readInto(offset + capacity * codeSize, new Uint8Array(ids.buffer)),
  ]);
  return { n, codes, ids };
}

const idAt = (ids: Int32Array, i: number) => ids[2 * i + 1]! * 4294967296 + (ids[2 * i]! >>> 0);

export interface IvfParams {
  nprobe: number;
  efSearch: number;
}

export class IvfSearcher {
  private readonly hnsw: HnswSearcher | undefined;
  private readonly centroids: Float32Array;
  private readonly lists: ListCache;
  /** The WebAssembly PQ scan, when it applies (else the JS loops below). */
  private readonly kernel: PqScanKernel | undefined;
  /** The PQ codebooks in a WebAssembly kernel, for the inner-product tables. */
  private readonly codebooks: MatrixKernel | undefined;
  readonly ip: boolean;

  constructor(
    readonly node: IvfNode,
    readonly parts: ListPart[],
    private readonly listConcurrency: number,
    cacheBytes: number,
  ) {
    this.lists = new ListCache(cacheBytes, (list) => readList(parts, list, node.codeSize));
    const q = node.quantizer;
    this.ip = node.header.metric === 'inner_product';
    this.centroids = (q.kind === 'flat' ? q.vectors : q.storage.vectors)!;
    this.hnsw =
      q.kind === 'hnsw'
        ? new HnswSearcher(q.graph, this.centroids, q.header.d, q.header.metric === 'inner_product')
        : undefined;
    const pq = node.pq;
    this.kernel = pq && PqScanKernel.fits(pq.M, pq.ksub) ? new PqScanKernel(pq.M, this.ip) : undefined;
    this.codebooks = pq && this.ip ? MatrixKernel.of(pq.centroids, node.header.d, pq.ksub) : undefined;
  }

  /** The lists to probe, best first (faiss's quantizer.search(q, nprobe)). */
  probes(q: Float32Array, params: IvfParams): number[] {
    const nprobe = Math.min(params.nprobe, this.node.nlist);
    const quantizerIp = this.node.quantizer.header.metric === 'inner_product';
    const heap = new TopK(nprobe, quantizerIp);
    if (this.hnsw) this.hnsw.search(q, heap, params.efSearch, nprobe);
    else scanRows(q, this.centroids, this.node.nlist, this.node.header.d, quantizerIp, heap, 0);
    return heap.sorted().ids;
  }

  async search(q: Float32Array, sink: ResultSink, params: IvfParams): Promise<void> {
    for await (const scanned of this.scan(q, sink, params)) void scanned;
  }

  /** The probed lists scanned into `sink` one at a time, in probe order; yields after each (a streaming search). */
  async *scan(q: Float32Array, sink: ResultSink, params: IvfParams): AsyncGenerator<number> {
    const probes = this.probes(q, params);
    const scan = this.node.pq ? this.pqScanner(q, this.node.pq) : this.flatScanner(q);
    for (let i = 0; i < probes.length; i++) {
      // Lists the next few probes need are fetched while this one is scanned.
      for (let j = i + 1; j < Math.min(probes.length, i + this.listConcurrency); j++)
        void Promise.resolve(this.lists.get(probes[j]!)).catch(() => {});
      const got = this.lists.get(probes[i]!);
      const content = got instanceof Promise ? await got : got;
      if (content.n > 0) scan(probes[i]!, content, sink);
      yield probes[i]!;
    }
  }

  private flatScanner(q: Float32Array) {
    const d = this.node.header.d;
    const ip = this.ip;
    return (list: number, c: ListContent, sink: ResultSink) => {
      const rows =
        c.codes.byteOffset % 4 === 0
          ? new Float32Array(c.codes.buffer, c.codes.byteOffset, c.n * d)
          : new Float32Array(c.codes.slice().buffer);
      for (let i = 0; i < c.n; i++) {
        const s = Math.fround(ip ? dot(q, 0, rows, i * d, d) : l2sq(q, 0, rows, i * d, d));
        if (ip ? s > sink.threshold : s < sink.threshold) sink.add(s, idAt(c.ids, i), list * 4294967296 + i);
      }
    };
  }

  private pqScanner(q: Float32Array, pq: ProductQuantizer) {
    const { M, ksub } = pq; // ksub = 256
    const d = this.node.header.d;
    const ip = this.ip;
    const byResidual = this.node.byResidual;
    const kernel = this.kernel;
    // float32, as faiss's tables (64 KB at M = 64: stays in L2); sums are in double all the same.
    const table = new Float32Array(M * ksub);
    if (ip) innerProductTable(pq, q, table, this.codebooks);
    else if (!byResidual) distanceTable(pq, q, table);
    const residual = new Float32Array(d);
    return (list: number, c: ListContent, sink: ResultSink) => {
      let dis0 = 0;
      if (byResidual && ip) dis0 = Math.fround(dot(q, 0, this.centroids, list * d, d));
      else if (byResidual) {
        for (let j = 0; j < d; j++) residual[j] = q[j]! - this.centroids[list * d + j]!;
        distanceTable(pq, residual, table);
        kernel?.forget(table); // the same array, new values
      }
      if (kernel) {
        // Only codes past the threshold at the list's start come back; it can only tighten as they are added.
        const count = kernel.scan(table, c.codes, c.n, dis0, sink.threshold);
        const { scores, hits } = kernel;
        for (let h = 0; h < count; h++) {
          const i = hits[h]!;
          const dis = scores[i]!;
          if (ip ? dis > sink.threshold : dis < sink.threshold) sink.add(dis, idAt(c.ids, i), list * 4294967296 + i);
        }
        return;
      }
      const codes = c.codes;
      // Four codes bytes per load when the layout allows it (M % 4 = 0, aligned): fewer loads and bounds checks.
      const words =
        M % 4 === 0 && codes.byteOffset % 4 === 0
          ? new Uint32Array(codes.buffer, codes.byteOffset, (c.n * M) / 4)
          : undefined;
      for (let i = 0; i < c.n; i++) {
        const s = words ? sumWords(table, words, (i * M) / 4, M) : sumBytes(table, codes, i * M, M);
        const dis = Math.fround(dis0 + Math.fround(s));
        if (ip ? dis > sink.threshold : dis < sink.threshold) sink.add(dis, idAt(c.ids, i), list * 4294967296 + i);
      }
    };
  }

  /** The vector an IVF entry stands for, in the IVF's space: the raw vector, or c_L + the decoded PQ residual. */
  async decode(payload: number): Promise<Float32Array> {
    const list = Math.floor(payload / 4294967296);
    const code = await this.readCode(list, payload % 4294967296);
    const d = this.node.header.d;
    const pq = this.node.pq;
    if (!pq) return new Float32Array(code.buffer, code.byteOffset, d);
    const out = new Float32Array(d);
    for (let m = 0; m < pq.M; m++) {
      const from = (m * pq.ksub + code[m]!) * pq.dsub;
      for (let j = 0; j < pq.dsub; j++) out[m * pq.dsub + j] = pq.centroids[from + j]!;
    }
    if (this.node.byResidual) for (let j = 0; j < d; j++) out[j] = out[j]! + this.centroids[list * d + j]!;
    return out;
  }

  /** Entry `offset` of `list` (counted across the parts in order), through the list cache: hits were just scanned. */
  private async readCode(list: number, offset: number): Promise<Uint8Array> {
    const content = await this.lists.get(list);
    if (offset >= content.n)
      throw faissFileInvalid(`no entry ${offset} in list ${list} of ${this.parts[0]?.source.name}`);
    const size = this.node.codeSize;
    return content.codes.slice(offset * size, (offset + 1) * size);
  }
}

/** Σ_m T[m][code_m] over one code of M bytes (ksub = 256). */
function sumBytes(table: Float32Array, codes: Uint8Array, o: number, M: number): number {
  let s = 0;
  for (let m = 0; m < M; m++) s += table[(m << 8) + codes[o + m]!]!;
  return s;
}

/**
 * The same, reading the code as little-endian 32-bit words (M % 4 = 0), with one partial sum per byte lane: a single
 * chain of M dependent additions, not the loads, bounded the scan (4 cycles of latency each). Sums are in double of
 * float32 table values, so the order changes nothing once rounded to float32 (but for rare last-bit ties).
 */
function sumWords(table: Float32Array, words: Uint32Array, w: number, M: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  for (let m = 0; m < M; m += 4) {
    const x = words[w++]!;
    s0 += table[(m << 8) + (x & 255)]!;
    s1 += table[((m + 1) << 8) + ((x >>> 8) & 255)]!;
    s2 += table[((m + 2) << 8) + ((x >>> 16) & 255)]!;
    s3 += table[((m + 3) << 8) + (x >>> 24)]!;
  }
  return s0 + s1 + (s2 + s3);
}

/** T[m][j] = ⟨q_m, C_m[j]⟩ (ProductQuantizer::compute_inner_prod_table), by the kernel when there is one. */
function innerProductTable(pq: ProductQuantizer, q: Float32Array, out: Float32Array, kernel?: MatrixKernel): void {
  const { M, ksub, dsub } = pq;
  kernel?.setQuery(q);
  for (let m = 0; m < M; m++) {
    if (kernel) out.set(kernel.ipRows(m * dsub, m * ksub * dsub, ksub, dsub), m * ksub);
    else for (let j = 0; j < ksub; j++) out[m * ksub + j] = dot(q, m * dsub, pq.centroids, (m * ksub + j) * dsub, dsub);
  }
}

/** T[m][j] = ‖x_m − C_m[j]‖² (ProductQuantizer::compute_distance_table). */
function distanceTable(pq: ProductQuantizer, x: Float32Array, out: Float32Array): void {
  for (let m = 0; m < pq.M; m++) {
    for (let j = 0; j < pq.ksub; j++)
      out[m * pq.ksub + j] = l2sq(x, m * pq.dsub, pq.centroids, (m * pq.ksub + j) * pq.dsub, pq.dsub);
  }
}
