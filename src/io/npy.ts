/**
 * .npy embeddings: open a local file or an http(s) URL, read rows by range as float32; encode and stream-write
 * float16/float32 files numpy reads back (`np.load`) unchanged.
 *
 * Supported: format 1.0/2.0/3.0; descr `<f2 <f4 >f2 >f4` (and `=`, host order); shapes `(n, d)` and `(n,)` (n rows of
 * one value); C order, and Fortran order (read column by column: d range reads per `readRows`, so slow over HTTP —
 * rewrite with `np.ascontiguousarray` for speed). Refused with NPY_MALFORMED naming the file: bad magic, other
 * versions, other dtypes (int64, float64, …, with the astype to use), 0-D and 3-D+ shapes, truncated data; a row
 * holding NaN or ±Infinity is refused when read, naming the row.
 */
import { open, rename, rm } from 'node:fs/promises';
import { internalError, invalidOption } from '../core/errors.js';
import { firstNonFinite, nonFiniteMessage } from '../core/validation.js';
import { float16BitsToFloat32Array, float32ToFloat16BitsArray } from './npy-float16.js';
import {
  HOST_LITTLE_ENDIAN,
  encodeNpyHeader,
  formatShape,
  itemSize,
  npyHeaderLength,
  npyMalformed,
  parseNpyHeader,
  type NpyDtype,
  type NpyHeader,
} from './npy-header.js';
import { isHttpUrl, openByteSource, openHttpSource, type ByteSource, type HttpSourceOptions } from './byte-source.js';

export type { NpyDtype, NpyHeader } from './npy-header.js';
export { parseNpyHeader, encodeNpyHeader, parsePythonLiteral, formatShape } from './npy-header.js';
export {
  float16BitsToFloat32,
  float32ToFloat16Bits,
  float16BitsToFloat32Array,
  float32ToFloat16BitsArray,
  NativeFloat16Array,
  type Float16Impl,
} from './npy-float16.js';
export type { HttpSourceOptions } from './byte-source.js';

export interface NpyFile {
  header: NpyHeader;
  /** The path or URL it was opened from. */
  source: string;
  /** Total file size in bytes. */
  byteLength: number;
  /**
   * Rows `[start, end)` as float32, row-major (`(end - start) * rowLength` values), float16 converted. Reads only
   * those bytes (one positioned read / one Range request for C order).
   */
  readRows(start: number, end: number): Promise<Float32Array>;
  close(): Promise<void>;
}

/** First read: enough for any header numpy writes for a 2-D array (they are 128 bytes), so one request usually. */
const PROBE_BYTES = 4096;
/** Parallel column reads of a Fortran-order file. */
const FORTRAN_PARALLEL = 8;
/** Most values one readRows may return (2^30 float32 = 4 GiB): bigger reads are a caller bug. */
const MAX_READ_VALUES = 2 ** 30;

/** `checkFinite` (default true): refuse NaN and infinite values when read; options for http(s) sources. */
export type OpenNpyOptions = HttpSourceOptions & { checkFinite?: boolean };

/** Opens a .npy file (local path, http(s) URL read with Range requests, or s3:// object) and validates header and size. */
export async function openNpy(pathOrUrl: string, opts: OpenNpyOptions = {}): Promise<NpyFile> {
  const { source, head } = isHttpUrl(pathOrUrl)
    ? await openHttpSource(pathOrUrl, PROBE_BYTES, opts)
    : await openByteSource(pathOrUrl, { probe: PROBE_BYTES });
  try {
    let bytes = head;
    const headerLength = npyHeaderLength(bytes, pathOrUrl);
    if (headerLength > bytes.length && headerLength <= source.size) {
      bytes = new Uint8Array(headerLength);
      await source.readInto(0, bytes);
    }
    const header = parseNpyHeader(bytes, pathOrUrl);
    const needed = header.rowCount * header.rowLength * itemSize(header.dtype);
    const found = Math.max(0, source.size - header.dataOffset);
    if (found < needed) {
      throw npyMalformed(
        `truncated: expected ${needed} bytes of data in ${pathOrUrl} (shape ${formatShape(header.shape)}, ${header.dtype}), found ${found}`,
        { hint: 'The file was cut short (an interrupted copy or write?); copy or regenerate it.' },
      );
    }
    return makeNpyFile(header, source, opts.checkFinite ?? true);
  } catch (err) {
    await source.close();
    throw err;
  }
}

function makeNpyFile(header: NpyHeader, source: ByteSource, checkFinite: boolean): NpyFile {
  const { rowCount, rowLength, dtype, littleEndian, dataOffset } = header;
  const size = itemSize(dtype);
  const rowBytes = rowLength * size;
  const fortran = header.fortranOrder && header.shape.length === 2 && rowCount > 1 && rowLength > 1;

  const readRows = async (start: number, end: number): Promise<Float32Array> => {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > rowCount) {
      throw invalidOption(
        `Expected a row range within [0, ${rowCount}] for ${source.name} but received [${start}, ${end})`,
      );
    }
    const rows = end - start;
    const count = rows * rowLength;
    if (count > MAX_READ_VALUES) {
      throw invalidOption(
        `Expected at most ${MAX_READ_VALUES} values per read of ${source.name} but received ${rows} rows of ${rowLength}`,
      );
    }
    if (count === 0) return new Float32Array(0);
    if (!fortran || rows === rowCount) {
      const values = await readValues(source, dataOffset + start * rowBytes, count, dtype, littleEndian);
      const out = fortran ? transpose(values, rowLength, rows) : values;
      return checkFinite ? requireFiniteRows(out, rowLength, start, source.name) : out;
    }
    // Fortran order: column j holds rowCount values; take [start, end) of each and interleave them into rows.
    const out = new Float32Array(count);
    let next = 0;
    const worker = async () => {
      while (next < rowLength) {
        const column = next++;
        const values = await readValues(
          source,
          dataOffset + (column * rowCount + start) * size,
          rows,
          dtype,
          littleEndian,
        );
        for (let r = 0; r < rows; r++) out[r * rowLength + column] = values[r]!;
      }
    };
    await Promise.all(Array.from({ length: Math.min(FORTRAN_PARALLEL, rowLength) }, worker));
    return checkFinite ? requireFiniteRows(out, rowLength, start, source.name) : out;
  };

  return { header, source: source.name, byteLength: source.size, readRows, close: () => source.close() };
}

/**
 * Embeddings must be finite: a NaN or infinite value makes every similarity with its row NaN, and LanceDB's index
 * builders fail on it with an internal error. Refused here, where every embedding is read, naming the file and the
 * row (0-based, as numpy counts). A scan costs ~1 ms per million values, next to the read itself.
 */
function requireFiniteRows(values: Float32Array, rowLength: number, firstRow: number, source: string): Float32Array {
  const i = firstNonFinite(values);
  if (i >= 0) {
    throw npyMalformed(
      nonFiniteMessage(source, `row ${firstRow + Math.floor(i / rowLength)} column ${i % rowLength}`, values[i]!),
      {
        hint: `Recompute that row's embedding or drop the row (np.isfinite(arr).all(axis=1) finds them), and its metadata with it.`,
      },
    );
  }
  return values;
}

/** Column-major `[cols][rows]` → row-major `[rows][cols]`. */
function transpose(values: Float32Array, cols: number, rows: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) out[r * cols + c] = values[c * rows + r]!;
  return out;
}

/** Reads `count` items at `offset` and decodes them to float32. */
async function readValues(
  source: ByteSource,
  offset: number,
  count: number,
  dtype: NpyDtype,
  littleEndian: boolean,
): Promise<Float32Array> {
  const swap = littleEndian !== HOST_LITTLE_ENDIAN;
  if (dtype === 'float32') {
    const out = new Float32Array(count);
    const bytes = new Uint8Array(out.buffer);
    await source.readInto(offset, bytes);
    if (swap) byteSwap(bytes, 4);
    return out;
  }
  const bits = new Uint16Array(count);
  const bytes = new Uint8Array(bits.buffer);
  await source.readInto(offset, bytes);
  if (swap) byteSwap(bytes, 2);
  return float16BitsToFloat32Array(bits);
}

function byteSwap(bytes: Uint8Array, width: 2 | 4): void {
  for (let i = 0; i + width <= bytes.length; i += width) {
    if (width === 2) {
      const a = bytes[i]!;
      bytes[i] = bytes[i + 1]!;
      bytes[i + 1] = a;
    } else {
      const a = bytes[i]!;
      const b = bytes[i + 1]!;
      bytes[i] = bytes[i + 3]!;
      bytes[i + 1] = bytes[i + 2]!;
      bytes[i + 2] = b;
      bytes[i + 3] = a;
    }
  }
}

/** Row data as little-endian bytes of `dtype` (float16 rounded to nearest even). */
function encodeValues(data: Float32Array, dtype: NpyDtype): Uint8Array {
  if (dtype === 'float16') {
    const bits = float32ToFloat16BitsArray(data);
    const bytes = new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
    if (!HOST_LITTLE_ENDIAN) byteSwap(bytes, 2);
    return bytes;
  }
  if (HOST_LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const bytes = new Uint8Array(data.byteLength);
  bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  byteSwap(bytes, 4);
  return bytes;
}

function checkDtype(dtype: string): asserts dtype is NpyDtype {
  if (dtype !== 'float16' && dtype !== 'float32') {
    throw invalidOption(`Expected float16 or float32 for the .npy dtype but received ${JSON.stringify(dtype)}`);
  }
}

/** A whole .npy file in memory (C order, little-endian), byte-for-byte what `np.save` writes for the same array. */
export function encodeNpy(data: Float32Array, shape: [number, number], dtype: NpyDtype): Uint8Array {
  checkDtype(dtype);
  const [rows, dim] = shape;
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(dim) || rows < 0 || dim < 0 || rows * dim !== data.length) {
    throw invalidOption(
      `Expected ${rows} × ${dim} = ${rows * dim} values for shape ${formatShape(shape)} but received ${data.length}`,
    );
  }
  const header = encodeNpyHeader(shape, dtype);
  const body = encodeValues(data, dtype);
  const out = new Uint8Array(header.length + body.length);
  out.set(header, 0);
  out.set(body, header.length);
  return out;
}

/**
 * Streams rows into a .npy file of shape `(rows, dim)`. Each input chunk holds one or more whole rows
 * (`k * dim` values). The header is written first for 0 rows — numpy's header keeps 21 digits of spare room for
 * the row count — and rewritten in place with the final count; the file is written as `path.partial` and renamed
 * when complete, so `path` never holds a half-written array.
 */
export async function writeNpy(
  path: string,
  rows: AsyncIterable<Float32Array> | Iterable<Float32Array>,
  dim: number,
  dtype: NpyDtype,
): Promise<{ rows: number }> {
  checkDtype(dtype);
  if (!Number.isSafeInteger(dim) || dim < 1)
    throw invalidOption(`Expected a positive integer for dim but received ${dim}`);
  const partial = `${path}.partial`;
  const handle = await open(partial, 'w');
  let count = 0;
  try {
    const placeholder = encodeNpyHeader([0, dim], dtype);
    await handle.write(placeholder, 0, placeholder.length, 0);
    let position = placeholder.length;
    for await (const chunk of rows) {
      if (chunk.length % dim !== 0) {
        throw invalidOption(
          `Expected whole rows of ${dim} values for ${path} but received a chunk of ${chunk.length} values`,
        );
      }
      const bytes = encodeValues(chunk, dtype);
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
        done += bytesWritten;
      }
      position += bytes.length;
      count += chunk.length / dim;
    }
    const header = encodeNpyHeader([count, dim], dtype);
    if (header.length !== placeholder.length) {
      // numpy's 21-digit growth room makes this impossible for any row count below 10^21.
      throw internalError(`the .npy header for ${count} rows does not fit the space reserved in ${path}`);
    }
    await handle.write(header, 0, header.length, 0);
    await handle.sync();
    await handle.close();
  } catch (err) {
    await handle.close().catch(() => {});
    await rm(partial, { force: true });
    throw err;
  }
  await rename(partial, path);
  return { rows: count };
}
