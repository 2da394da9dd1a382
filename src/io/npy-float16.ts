/**
 * IEEE 754 binary16 ⇄ binary32, as numpy's `astype` does it: round to nearest, ties to even; subnormals kept;
 * overflow to ±inf; NaN stays NaN. The runtime's Float16Array is used when it exists (Node ≥ 24); a manual path
 * (bit arithmetic, and a 64K-entry table for decoding arrays) serves older runtimes. Both are tested against
 * numpy-made fixtures.
 */

interface Float16ArrayLike extends ArrayLike<number> {
  [index: number]: number;
  readonly buffer: ArrayBufferLike;
  set(array: ArrayLike<number>, offset?: number): void;
}
type Float16ArrayCtor = new (
  bufferOrLength: ArrayBufferLike | number,
  byteOffset?: number,
  length?: number,
) => Float16ArrayLike;

/** The runtime's Float16Array constructor, or undefined (ES2023 lib types do not know it yet). */
export const NativeFloat16Array: Float16ArrayCtor | undefined = (globalThis as { Float16Array?: Float16ArrayCtor })
  .Float16Array;

export type Float16Impl = 'native' | 'manual';
/** What the array helpers use unless told otherwise. */
export const DEFAULT_FLOAT16_IMPL: Float16Impl = NativeFloat16Array ? 'native' : 'manual';

const scratch = new DataView(new ArrayBuffer(4));

/** float16 bits → the number they encode. Manual and exact. */
export function float16BitsToFloat32(bits: number): number {
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  const sign = bits & 0x8000 ? -1 : 1;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/**
 * The float16 bits of a number, rounded from its float32 value (as numpy's float32 → float16 cast): ties to even,
 * subnormals, ±inf on overflow (≥ 65520), NaN → a quiet NaN keeping the sign and the top mantissa bits.
 */
export function float32ToFloat16Bits(value: number): number {
  scratch.setFloat32(0, value);
  const f = scratch.getUint32(0);
  const sign = (f >>> 16) & 0x8000;
  const exponent = (f >>> 23) & 0xff;
  const mantissa = f & 0x7fffff;
  if (exponent === 0xff) {
    if (mantissa === 0) return sign | 0x7c00;
    return sign | 0x7e00 | (mantissa >>> 13);
  }
  if (exponent >= 0x8f) return sign | 0x7c00; // |x| ≥ 2^16 overflows
  if (exponent <= 0x70) {
    // |x| < 2^-14: a float16 subnormal (or zero); value = h · 2^-24
    if (exponent < 0x66) return sign; // < 2^-25 rounds to zero (2^-25 itself is a tie, also to zero)
    const full = mantissa | 0x800000;
    const shift = 126 - exponent; // 14 … 24
    let h = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h; // h may carry to 0x400, the smallest normal: still the right encoding
  }
  let h = ((exponent - 112) << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // a carry into the exponent gives inf correctly
  return sign | h;
}

let table: Float32Array | undefined;
function decodeTable(): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) table[bits] = float16BitsToFloat32(bits);
  }
  return table;
}

/** Decodes host-order float16 bits into `out` (same length). */
export function float16BitsToFloat32Array(
  bits: Uint16Array,
  out: Float32Array = new Float32Array(bits.length),
  impl: Float16Impl = DEFAULT_FLOAT16_IMPL,
): Float32Array {
  if (impl === 'native' && NativeFloat16Array) {
    out.set(new NativeFloat16Array(bits.buffer, bits.byteOffset, bits.length));
    return out;
  }
  const lut = decodeTable();
  for (let i = 0; i < bits.length; i++) out[i] = lut[bits[i]!]!;
  return out;
}

/** Encodes float32 values as host-order float16 bits (same length). */
export function float32ToFloat16BitsArray(
  values: Float32Array,
  out: Uint16Array = new Uint16Array(values.length),
  impl: Float16Impl = DEFAULT_FLOAT16_IMPL,
): Uint16Array {
  if (impl === 'native' && NativeFloat16Array) {
    new NativeFloat16Array(out.buffer, out.byteOffset, out.length).set(values);
    return out;
  }
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]!);
  return out;
}
