/**
 * WebAssembly kernels for the hot loops of a search, emitted as bytes by `wasm.ts` and compiled synchronously when an
 * index is opened (a few KB: ~6 ms at M = 64, 23 ms at M = 1 024, with the matrices' copies). The JavaScript loops in ivf.ts / vectors.ts stay as the
 * fallback (no WebAssembly, or CLIPSTREAM_FAISS_KERNELS=js) and give the same values: each kernel does the same
 * float32 loads and the same double additions in the same order.
 *
 * Why: the PQ code scan is M table lookups per code (2 M lookups a query at nprobe 64, M = 64); V8's loads from a
 * typed array pay bounds checks and index arithmetic that WebAssembly's constant memory offsets do without
 * (~1.1 → 0.36 ns a lookup), and dot products get SIMD (f64x2: ~4× the JS loop at d = 448).
 */
import { Code, encodeModule, F32, F64, I32, op, simd, V128 } from './wasm.js';

/** The subset of the WebAssembly JS API used here (lib ES2023 does not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
interface WasmMemory {
  buffer: ArrayBuffer;
  grow(pages: number): number;
}

const wasmApi = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

/** Whether searches use the WebAssembly kernels (the default when the runtime has WebAssembly). */
export function kernelsEnabled(): boolean {
  return wasmApi !== undefined && process.env.CLIPSTREAM_FAISS_KERNELS !== 'js';
}

const PAGE = 65536;

/**
 * scan(codes, n, out, dis0, threshold, hits) → count: out[i] = f32(dis0 + f32(Σ_m T[m][code_i[m]])) for the n codes
 * of M bytes at `codes`, with the table T (M × 256 float32) at address 0, and the indices i whose score beats
 * `threshold` (IP: >, L2: <) written to hits[0, count). As `sumWords` in ivf.ts: one double partial sum per
 * m mod 4, then (s0 + s1) + (s2 + s3). The M lookups are unrolled, each a byte load and a table load at a constant
 * offset (m · 1024), which is why the module is made for one M (and one metric). ~0.35 ns a lookup on this
 * machine's EPYC (float64 tables, 128 KB at M = 64, were slower: 0.46).
 */
function pqScanBody(M: number, ip: boolean): Code {
  const [codes, n, out, dis0, threshold, hits, i, count, v] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const s = [9, 10, 11, 12, 13, 14, 15, 16];
  const c = new Code();
  // Two codes a turn (eight independent chains of additions: 0.385 → 0.355 ns a lookup), then the last one
  // alone. Each code's own sums are the same either way.
  for (const per of [2, 1]) {
    c.emit(op.block, 0x40, op.loop, 0x40);
    c.get(i).i32(per).emit(op.i32Add).get(n).emit(op.i32GtU, op.brIf, 1);
    for (let m = 0; m < M; m++) {
      for (let p = 0; p < per; p++) {
        // T[m][byte] (float64) at m · 2048 + byte · 8: one byte load, and the shift folds into the address
        c.get(codes)
          .mem(op.i32Load8U, 0, p * M + m)
          .i32(2)
          .emit(op.i32Shl)
          .mem(op.f32Load, 2, m * 1024)
          .emit(op.f64PromoteF32);
        const acc = s[4 * p + (m % 4)]!;
        if (m >= 4) c.get(acc).emit(op.f64Add);
        c.set(acc);
      }
    }
    for (let p = 0; p < per; p++) {
      const [s0, s1, s2, s3] = s.slice(4 * p, 4 * p + 4) as [number, number, number, number];
      c.get(out).get(dis0).get(s0).get(s1).emit(op.f64Add).get(s2).get(s3).emit(op.f64Add, op.f64Add);
      c.emit(op.f32DemoteF64, op.f64PromoteF32, op.f64Add, op.f32DemoteF64)
        .tee(v)
        .mem(op.f32Store, 2, 4 * p);
      c.get(v)
        .get(threshold)
        .emit(ip ? op.f32Gt : op.f32Lt, op.if, 0x40);
      c.get(hits).get(count).i32(2).emit(op.i32Shl, op.i32Add).get(i).i32(p).emit(op.i32Add).mem(op.i32Store, 2, 0);
      c.get(count).i32(1).emit(op.i32Add).set(count).emit(op.end);
    }
    c.get(codes)
      .i32(per * M)
      .emit(op.i32Add)
      .set(codes);
    c.get(out)
      .i32(4 * per)
      .emit(op.i32Add)
      .set(out);
    c.get(i).i32(per).emit(op.i32Add).set(i);
    c.emit(op.br, 0, op.end, op.end);
  }
  c.get(count);
  return c;
}

const modules = new Map<string, object>();

function pqModule(M: number, ip: boolean): object {
  let m = modules.get(`${M} ${ip}`);
  if (!m) {
    const fn = {
      name: 'scan',
      params: [I32, I32, I32, F64, F32, I32],
      results: [I32],
      locals: [I32, I32, F32, ...new Array<number>(8).fill(F64)], // i, count, v, s
      body: pqScanBody(M, ip),
    };
    m = new wasmApi!.Module(encodeModule([fn], Math.ceil((M * 1024 + 1024 * (M + 8)) / PAGE))); // 1024 codes
    modules.set(`${M} ${ip}`, m);
  }
  return m;
}

/**
 * One PQ scanner's WebAssembly instance and memory: the table at 0, then room for one list's codes, scores and
 * hits (grown to the largest list seen). Searches may interleave (they await list reads), so the table in memory
 * is reloaded whenever a scan brings another one.
 */
export class PqScanKernel {
  private readonly scanFn: (codes: number, n: number, out: number, dis0: number, th: number, hits: number) => number;
  private readonly memory: WasmMemory;
  private loaded: Float32Array | undefined;
  private table!: Float32Array;
  private codes!: Uint8Array;
  /** After a scan: every code's score, and the indices of those that beat the threshold (a view, until the next). */
  scores!: Float32Array;
  hits!: Int32Array;

  constructor(
    readonly M: number,
    ip: boolean,
  ) {
    const instance = new wasmApi!.Instance(pqModule(M, ip), {});
    this.scanFn = instance.exports.scan as typeof this.scanFn;
    this.memory = instance.exports.memory as WasmMemory;
    this.layout();
  }

  /**
   * Whether this kernel applies: M a multiple of 4 and at most 1 024 (the unrolled module grows with M, ~60 bytes of
   * WebAssembly a sub-quantizer; faiss indexes in use have M ≤ 256), 8-bit codes (ksub 256).
   */
  static fits(M: number, ksub: number): boolean {
    return kernelsEnabled() && M % 4 === 0 && M <= 1024 && ksub === 256;
  }

  /** Views of the table, the codes, the scores and the hits, over the memory as it is now. */
  private layout(): void {
    const buffer = this.memory.buffer;
    const tableBytes = this.M * 1024;
    const capacity = Math.floor((buffer.byteLength - tableBytes) / (this.M + 8));
    this.table = new Float32Array(buffer, 0, this.M * 256);
    this.codes = new Uint8Array(buffer, tableBytes, capacity * this.M);
    this.scores = new Float32Array(buffer, tableBytes + capacity * this.M, capacity);
    this.hits = new Int32Array(buffer, tableBytes + capacity * (this.M + 4), capacity);
  }

  /** The next scan reloads `table` (its values changed). */
  forget(table: Float32Array): void {
    if (this.loaded === table) this.loaded = undefined;
  }

  /** Scores the n codes; returns how many beat `threshold` (a float32 value): hits[0, count). */
  scan(table: Float32Array, codes: Uint8Array, n: number, dis0: number, threshold: number): number {
    if (n > this.scores.length) {
      const need = this.M * 1024 + n * (this.M + 8) - this.memory.buffer.byteLength;
      this.memory.grow(Math.ceil(need / PAGE));
      this.layout(); // growing keeps the contents (the table) but replaces the buffer
    }
    if (this.loaded !== table) {
      this.table.set(table);
      this.loaded = table;
    }
    this.codes.set(codes.length === n * this.M ? codes : codes.subarray(0, n * this.M));
    return this.scanFn(this.codes.byteOffset, n, this.scores.byteOffset, dis0, threshold, this.hits.byteOffset);
  }
}

// ---- dot products and squared distances (f64x2 SIMD), for quantizer and HNSW vectors, PQ tables, OPQ ----

const HIGH_HALF = [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];

/**
 * ip(a, b, d) / l2(a, b, d) over float32 vectors at byte addresses a and b: what vectors.ts's dot / l2sq return,
 * bit for bit. Products (exact in double) and sums are in double, in the JS loops' lanes and order: dot keeps
 * four partial sums s_{j mod 4} (here two f64x2 accumulators: [s0, s1] and [s2, s3]), the d mod 4 tail into s0,
 * then (s0 + s1) + (s2 + s3); l2 keeps two, s_{j mod 2} (one f64x2), the tail alternating, then s0 + s1.
 */
function distanceBody(l2: boolean): Code {
  const [a, b, d, end, r] = [0, 1, 2, 3, 4];
  const [va, vb, acc0, acc1] = [5, 6, 7, 8];
  const s = [9, 10, 11, 12];
  const c = new Code();
  const zero = () => c.simd(simd.v128Const, ...new Array<number>(16).fill(0));
  const low = (v: number) => c.get(v).simd(simd.f64x2PromoteLowF32x4);
  const high = (v: number) =>
    c
      .get(v)
      .get(v)
      .simd(simd.i8x16Shuffle, ...HIGH_HALF)
      .simd(simd.f64x2PromoteLowF32x4);
  /** acc += lo·lo (dot) or (lo − lo)² (l2), `half` choosing the low or high two floats of va and vb. */
  const accumulate = (acc: number, half: (v: number) => Code) => {
    c.get(acc);
    half(va);
    half(vb);
    if (l2) c.simd(simd.f64x2Sub).tee(acc1).get(acc1);
    c.simd(simd.f64x2Mul).simd(simd.f64x2Add).set(acc);
  };
  c.get(d).i32(3).emit(op.i32And).set(r);
  c.get(a).get(d).get(r).emit(op.i32Sub).i32(2).emit(op.i32Shl, op.i32Add).set(end);
  zero().set(acc0);
  zero().set(acc1);
  c.emit(op.block, 0x40, op.loop, 0x40);
  c.get(a).get(end).emit(op.i32GeU, op.brIf, 1);
  c.get(a).simd(simd.v128Load, 0, 0).set(va);
  c.get(b).simd(simd.v128Load, 0, 0).set(vb);
  accumulate(acc0, low);
  accumulate(l2 ? acc0 : acc1, high);
  c.get(a).i32(16).emit(op.i32Add).set(a);
  c.get(b).i32(16).emit(op.i32Add).set(b);
  c.emit(op.br, 0, op.end, op.end);
  c.get(acc0).simd(simd.f64x2ExtractLane, 0).set(s[0]!);
  c.get(acc0).simd(simd.f64x2ExtractLane, 1).set(s[1]!);
  if (!l2) c.get(acc1).simd(simd.f64x2ExtractLane, 0).set(s[2]!);
  if (!l2) c.get(acc1).simd(simd.f64x2ExtractLane, 1).set(s[3]!);
  for (let k = 0; k < 3; k++) {
    const into = l2 ? s[k % 2]! : s[0]!;
    c.get(r).i32(k).emit(op.i32GtU, op.if, 0x40).get(into);
    c.get(a)
      .mem(op.f32Load, 2, 4 * k)
      .emit(op.f64PromoteF32);
    c.get(b)
      .mem(op.f32Load, 2, 4 * k)
      .emit(op.f64PromoteF32);
    if (l2) c.emit(op.f64Sub).tee(s[2]!).get(s[2]!);
    c.emit(op.f64Mul, op.f64Add).set(into).emit(op.end);
  }
  c.get(s[0]!).get(s[1]!).emit(op.f64Add);
  if (!l2) c.get(s[2]!).get(s[3]!).emit(op.f64Add, op.f64Add);
  return c;
}

/** ipRows(q, rows, n, d, out): out[i] (f64) = ip(q, rows + i·d·4, d) for i < n. */
function ipRowsBody(): Code {
  const [q, rows, n, d, out, end] = [0, 1, 2, 3, 4, 5];
  const c = new Code();
  c.get(out).get(n).i32(3).emit(op.i32Shl, op.i32Add).set(end);
  c.emit(op.block, 0x40, op.loop, 0x40);
  c.get(out).get(end).emit(op.i32GeU, op.brIf, 1);
  c.get(out).get(q).get(rows).get(d).emit(op.call, 0).mem(op.f64Store, 3, 0);
  c.get(rows).get(d).i32(2).emit(op.i32Shl, op.i32Add).set(rows);
  c.get(out).i32(8).emit(op.i32Add).set(out);
  c.emit(op.br, 0, op.end, op.end);
  return c;
}

let vectorModule: object | undefined;

function vectorsModule(): object {
  const locals = [I32, I32, V128, V128, V128, V128, F64, F64, F64, F64];
  vectorModule ??= new wasmApi!.Module(
    encodeModule(
      [
        { name: 'ip', params: [I32, I32, I32], results: [F64], locals, body: distanceBody(false) },
        { name: 'l2', params: [I32, I32, I32], results: [F64], locals, body: distanceBody(true) },
        { name: 'ipRows', params: [I32, I32, I32, I32, I32], results: [], locals: [I32], body: ipRowsBody() },
      ],
      1,
    ),
  );
  return vectorModule;
}

/** Matrices past this size keep the JS loops (the kernel holds a copy: resident memory would double). */
export const MATRIX_KERNEL_MAX_BYTES = 64 * 1048576;

/**
 * A copy of one resident matrix (quantizer centroids, HNSW vectors, PQ codebooks, an OPQ matrix) in a kernel's
 * memory, a query slot of `queryFloats` and room for `outRows` results: [query | out | matrix]. Searches put their
 * query in, then score rows; a search's scoring is synchronous, so interleaved searches cannot see another's query.
 */
export class MatrixKernel {
  private readonly ipFn: (a: number, b: number, d: number) => number;
  private readonly l2Fn: (a: number, b: number, d: number) => number;
  private readonly ipRowsFn: (q: number, rows: number, n: number, d: number, out: number) => void;
  private readonly query: Float32Array;
  private readonly out: Float64Array;
  private readonly matrix: number;

  /** A kernel for `matrix`, or undefined when kernels are off or the matrix is too large to copy. */
  static of(matrix: Float32Array, queryFloats: number, outRows = 0): MatrixKernel | undefined {
    if (!kernelsEnabled() || matrix.byteLength > MATRIX_KERNEL_MAX_BYTES) return undefined;
    return new MatrixKernel(matrix, queryFloats, outRows);
  }

  private constructor(matrix: Float32Array, queryFloats: number, outRows: number) {
    const instance = new wasmApi!.Instance(vectorsModule(), {});
    const e = instance.exports;
    this.ipFn = e.ip as typeof this.ipFn;
    this.l2Fn = e.l2 as typeof this.l2Fn;
    this.ipRowsFn = e.ipRows as typeof this.ipRowsFn;
    const memory = e.memory as WasmMemory;
    const outAt = Math.ceil(queryFloats / 4) * 16;
    this.matrix = outAt + outRows * 8;
    const need = this.matrix + matrix.byteLength - memory.buffer.byteLength;
    if (need > 0) memory.grow(Math.ceil(need / PAGE));
    this.query = new Float32Array(memory.buffer, 0, queryFloats);
    this.out = new Float64Array(memory.buffer, outAt, outRows);
    new Float32Array(memory.buffer, this.matrix, matrix.length).set(matrix);
  }

  setQuery(q: Float32Array): void {
    this.query.set(q);
  }

  /** dot(query[qAt, qAt + d), matrix[at, at + d)) as vectors.ts's dot. */
  ip(qAt: number, at: number, d: number): number {
    return this.ipFn(qAt * 4, this.matrix + at * 4, d);
  }

  /** l2sq(query[qAt, qAt + d), matrix[at, at + d)) as vectors.ts's l2sq. */
  l2(qAt: number, at: number, d: number): number {
    return this.l2Fn(qAt * 4, this.matrix + at * 4, d);
  }

  /** dot(query[qAt, qAt + d), row i) for the n rows of d floats from matrix[at] (a view valid until the next call). */
  ipRows(qAt: number, at: number, n: number, d: number): Float64Array {
    this.ipRowsFn(qAt * 4, this.matrix + at * 4, n, d, this.out.byteOffset);
    return this.out.subarray(0, n);
  }
}
