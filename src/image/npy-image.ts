import { npyHeaderLength, parsePythonLiteral, PyTuple } from '../io/npy-header.js';

export interface NpyPixels {
  width: number;
  height: number;
  /** HWC uint8 RGB, a view into the bytes. */
  pixels: Buffer;
}

/**
 * The pixels of an `npy` image (what processImage writes: a C-order `(h, w, 3)` uint8 array), or null for anything
 * else — the bytes may come from any tar, so nothing in them is trusted.
 */
export function readNpyImage(bytes: Buffer): NpyPixels | null {
  let offset: number;
  let dict: unknown;
  try {
    offset = npyHeaderLength(bytes, 'image');
    if (offset > bytes.length || offset > 4096) return null;
    dict = parsePythonLiteral(bytes.subarray(bytes[6] === 1 ? 10 : 12, offset).toString('latin1'));
  } catch {
    return null;
  }
  if (!(dict instanceof Map) || dict.get('descr') !== '|u1' || dict.get('fortran_order') !== false) return null;
  const shape = dict.get('shape');
  if (!(shape instanceof PyTuple) || shape.items.length !== 3 || shape.items[2] !== 3n) return null;
  const [height, width] = shape.items.map(Number) as [number, number];
  if (!(Number.isSafeInteger(height) && Number.isSafeInteger(width) && height > 0 && width > 0)) return null;
  if (bytes.length - offset !== height * width * 3) return null;
  return { width, height, pixels: bytes.subarray(offset) };
}
