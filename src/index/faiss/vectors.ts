/**
 * The arithmetic every index type shares: scores of one query against rows of a flat float32 matrix, and the
 * pre-transform chain (OPQ / PCA / remap / normalise / centre) forwards and, for reconstruction, backwards.
 * Scores are accumulated in double and rounded to float32 once, as the values faiss returns (its own float32
 * sums differ from these by rounding only, ~1e-7 relative).
 */
import type { Transform } from './format.js';
import type { ResultSink } from './heap.js';
import type { MatrixKernel } from './kernels.js';

/** Four partial sums, as faiss's SIMD loops keep lanes: ~3× faster in V8 than one chain of additions. */
export function dot(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = 0;
  for (; j + 4 <= d; j += 4) {
    s0 += a[aOffset + j]! * b[bOffset + j]!;
    s1 += a[aOffset + j + 1]! * b[bOffset + j + 1]!;
    s2 += a[aOffset + j + 2]! * b[bOffset + j + 2]!;
    s3 += a[aOffset + j + 3]! * b[bOffset + j + 3]!;
  }
  for (; j < d; j++) s0 += a[aOffset + j]! * b[bOffset + j]!;
  return s0 + s1 + (s2 + s3);
}

export function l2sq(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let j = 0;
  for (; j + 2 <= d; j += 2) {
    const t0 = a[aOffset + j]! - b[bOffset + j]!;
    const t1 = a[aOffset + j + 1]! - b[bOffset + j + 1]!;
    s0 += t0 * t0;
    s1 += t1 * t1;
  }
  if (j < d) {
    const t = a[aOffset + j]! - b[bOffset + j]!;
    s0 += t * t;
  }
  return s0 + s1;
}

/**
 * Scores rows [0, n) of `rows` (row-major, d wide) against `q` into `sink`; row r gets id `ids(r)` (first row's
 * id = `firstId` when `ids` is undefined).
 */
export function scanRows(
  q: Float32Array,
  rows: Float32Array,
  n: number,
  d: number,
  ip: boolean,
  sink: ResultSink,
  firstId: number,
  ids?: (row: number) => number,
): void {
  for (let r = 0; r < n; r++) {
    const s = Math.fround(ip ? dot(q, 0, rows, r * d, d) : l2sq(q, 0, rows, r * d, d));
    if (ip ? s > sink.threshold : s < sink.threshold) sink.add(s, ids ? ids(r) : firstId + r);
  }
}

/** x through the chain; kernels[c], when given, holds transform c's matrix (a linear one's A). */
export function applyChain(
  chain: Transform[],
  x: Float32Array,
  kernels: (MatrixKernel | undefined)[] = [],
): Float32Array {
  let v = x;
  chain.forEach((t, c) => (v = applyTransform(t, v, kernels[c])));
  return v;
}

function applyTransform(t: Transform, x: Float32Array, kernel: MatrixKernel | undefined): Float32Array {
  const y = new Float32Array(t.dOut);
  switch (t.kind) {
    case 'linear': {
      kernel?.setQuery(x);
      const ax = kernel?.ipRows(0, 0, t.dOut, t.dIn); // ⟨x, A_i⟩: the products and sums of dot(A_i, x)
      for (let i = 0; i < t.dOut; i++) y[i] = (t.b ? t.b[i]! : 0) + (ax ? ax[i]! : dot(t.A, i * t.dIn, x, 0, t.dIn));
      return y;
    }
    case 'remap':
      for (let j = 0; j < t.dOut; j++) y[j] = t.map[j]! >= 0 ? x[t.map[j]!]! : 0;
      return y;
    case 'normalize': {
      const norm = Math.sqrt(dot(x, 0, x, 0, t.dIn));
      for (let j = 0; j < t.dIn; j++) y[j] = norm > 0 ? x[j]! / norm : x[j]!;
      return y;
    }
    case 'center':
      for (let j = 0; j < t.dIn; j++) y[j] = x[j]! - t.mean[j]!;
      return y;
  }
}

/**
 * From the index's space back to the input space: a linear transform through Aᵀ (exact for OPQ and random
 * rotations, whose A has orthonormal rows, or orthonormal columns when OPQ widens d: then Aᵀ(Ax) = x); a remap puts
 * values back in place; a normalisation cannot be undone and is left as is; a centring adds the mean back.
 */
export function reverseChain(chain: Transform[], y: Float32Array): Float32Array {
  let v = y;
  for (let c = chain.length - 1; c >= 0; c--) {
    const t = chain[c]!;
    const x = new Float64Array(t.dIn);
    if (t.kind === 'linear') {
      for (let i = 0; i < t.dOut; i++) {
        const yi = v[i]! - (t.b ? t.b[i]! : 0);
        for (let j = 0; j < t.dIn; j++) x[j] = x[j]! + t.A[i * t.dIn + j]! * yi;
      }
    } else if (t.kind === 'remap') {
      for (let j = 0; j < t.dOut; j++) if (t.map[j]! >= 0) x[t.map[j]!] = v[j]!;
    } else if (t.kind === 'center') {
      for (let j = 0; j < t.dIn; j++) x[j] = v[j]! + t.mean[j]!;
    } else {
      x.set(v);
    }
    v = Float32Array.from(x);
  }
  return v;
}
