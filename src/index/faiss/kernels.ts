/**
 * WebAssembly kernels for the hot loops of a search, emitted as bytes by `wasm.ts` and compiled synchronously when an
 * index is opened (a few KB, well under a millisecond). The JavaScript loops in ivf.ts / vectors.ts stay as the
 * fallback (no WebAssembly, or CLIPSTREAM_FAISS_KERNELS=js) and give the same values: each kernel does the same
 * float32 loads and the same double additions in the same order.
 *
 * Why: the PQ code scan is M dependent table lookups per code (2 M lookups a query at nprobe 64); V8's loads from a
 * typed array pay bounds checks and index arithmetic that WebAssembly's constant memory offsets do without.
 */
import { Code, encodeModule, F64, I32, op } from './wasm.js';

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
 * scan(codes, n, out, dis0): out[i] = f32(dis0 + f32(Σ_m T[m][code_i[m]])) for the n codes of M bytes at `codes`,
 * with the table T (M × 256 float32) at address 0. As `sumWords` in ivf.ts: the code read as 32-bit words, one
 * double partial sum per byte lane, (s0 + s1) + (s2 + s3). The M lookups are unrolled, each a load at a constant
 * offset (m · 1024) from the code byte · 4, which is why the module is made for one M.
 */
function pqScanBody(M: number): Code {
  const [codes, n, out, dis0, end, x] = [0, 1, 2, 3, 4, 5];
  const s = [6, 7, 8, 9];
  const c = new Code();
  c.get(out).get(n).i32(2).emit(op.i32Shl, op.i32Add).set(end);
  c.emit(op.block, 0x40, op.loop, 0x40);
  c.get(out).get(end).emit(op.i32GeU, op.brIf, 1);
  for (let w = 0; w < M / 4; w++) {
    c.get(codes)
      .mem(op.i32Load, 2, 4 * w)
      .set(x);
    for (let k = 0; k < 4; k++) {
      // byte k of the word, times 4: (x >>> (8k − 2)) & 1020 (k = 0: (x << 2) & 1020)
      c.get(x);
      if (k === 0) c.i32(2).emit(op.i32Shl);
      else c.i32(8 * k - 2).emit(op.i32ShrU);
      c.i32(1020).emit(op.i32And);
      c.mem(op.f32Load, 2, (4 * w + k) * 1024).emit(op.f64PromoteF32);
      if (w > 0) c.get(s[k]!).emit(op.f64Add);
      c.set(s[k]!);
    }
  }
  c.get(out).get(dis0);
  c.get(s[0]!).get(s[1]!).emit(op.f64Add).get(s[2]!).get(s[3]!).emit(op.f64Add, op.f64Add);
  c.emit(op.f32DemoteF64, op.f64PromoteF32, op.f64Add, op.f32DemoteF64).mem(op.f32Store, 2, 0);
  c.get(codes).i32(M).emit(op.i32Add).set(codes);
  c.get(out).i32(4).emit(op.i32Add).set(out);
  c.emit(op.br, 0, op.end, op.end);
  return c;
}

const modules = new Map<number, object>();

function pqModule(M: number): object {
  let m = modules.get(M);
  if (!m) {
    const body = pqScanBody(M);
    const fn = {
      name: 'scan',
      params: [I32, I32, I32, F64],
      results: [],
      locals: [I32, I32, F64, F64, F64, F64],
      body,
    };
    m = new wasmApi!.Module(encodeModule([fn], 2));
    modules.set(M, m);
  }
  return m;
}

/**
 * One PQ scanner's WebAssembly instance and memory: the table at 0, then room for one list's codes and its
 * distances (grown to the largest list seen). Searches may interleave (they await list reads), so the table in
 * memory is reloaded whenever a scan brings another one.
 */
export class PqScanKernel {
  private readonly scanFn: (codes: number, n: number, out: number, dis0: number) => void;
  private readonly memory: WasmMemory;
  private loaded: Float32Array | undefined;
  private table!: Float32Array;
  private codes!: Uint8Array;
  private out!: Float32Array;

  constructor(readonly M: number) {
    const instance = new wasmApi!.Instance(pqModule(M), {});
    this.scanFn = instance.exports.scan as typeof this.scanFn;
    this.memory = instance.exports.memory as WasmMemory;
    this.layout();
  }

  /** Whether this kernel applies: M a multiple of 4, 8-bit codes (ksub 256). */
  static fits(M: number, ksub: number): boolean {
    return kernelsEnabled() && M % 4 === 0 && ksub === 256;
  }

  /** Views of the table, the codes and the distances, over the memory as it is now. */
  private layout(): void {
    const buffer = this.memory.buffer;
    const tableBytes = this.M * 1024;
    const capacity = Math.floor((buffer.byteLength - tableBytes) / (this.M + 4));
    this.table = new Float32Array(buffer, 0, this.M * 256);
    this.codes = new Uint8Array(buffer, tableBytes, capacity * this.M);
    this.out = new Float32Array(buffer, tableBytes + capacity * this.M, capacity);
  }

  /** The next scan reloads `table` (its values changed). */
  forget(table: Float32Array): void {
    if (this.loaded === table) this.loaded = undefined;
  }

  /** The scores of the n codes: out[0, n) (a view of the kernel's memory, valid until the next scan). */
  scan(table: Float32Array, codes: Uint8Array, n: number, dis0: number): Float32Array {
    if (n > this.out.length) {
      const need = this.M * 1024 + n * (this.M + 4) - this.memory.buffer.byteLength;
      this.memory.grow(Math.ceil(need / PAGE));
      this.layout(); // growing keeps the contents (the table) but replaces the buffer
    }
    if (this.loaded !== table) {
      this.table.set(table);
      this.loaded = table;
    }
    this.codes.set(codes.length === n * this.M ? codes : codes.subarray(0, n * this.M));
    this.scanFn(this.codes.byteOffset, n, this.out.byteOffset, dis0);
    return this.out;
  }
}
