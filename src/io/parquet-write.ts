import { open, rm, type FileHandle } from 'node:fs/promises';
import { ByteWriter, ParquetWriter, schemaFromColumnData } from 'hyparquet-writer';
import { internalError, invalidOption } from '../core/errors.js';
import { jsonReplacer } from './json-value.js';

/**
 * Streaming parquet writer on hyparquet-writer: rows are buffered column-wise up to `rowGroupSize`, then encoded
 * as one row group and written to the file, so memory is bounded by one row group (a parquet of images never
 * holds a whole shard).
 *
 * Column type policy (every column is nullable):
 * - The type of a column is fixed when the writer opens. For columns whose type is not known in advance, the
 *   caller asks `inferColumnType(value)` of the first non-null value, or better `inferColumnTypeOf(values)` of
 *   all values it has (that one widens instead of guessing from one value).
 * - A later value of another type is converted when the conversion is exact: anything → STRING (numbers and
 *   booleans with `String`, objects and arrays as JSON text, bytes as base64), integer → DOUBLE, safe bigint →
 *   INT32/DOUBLE, integer number → INT64, numeric text → a number column, "true"/"false" → BOOLEAN, text → UTF-8
 *   bytes. A value that has no exact conversion (2.5 or "abc" in an INT32 column, an int32 overflow) is written as
 *   null and counted in `mismatches[column]`; writing a row never throws because of its values — a failed sample
 *   is a row, never an exception. Callers who cannot afford any loss declare the column STRING.
 */
export type ParquetColumnType = 'STRING' | 'INT32' | 'INT64' | 'DOUBLE' | 'BOOLEAN' | 'BYTE_ARRAY' | 'JSON';

export interface ParquetColumn {
  name: string;
  type: ParquetColumnType;
  /**
   * Large incompressible blobs (encoded images): plain encoding, no compression, no statistics. Saves the
   * dictionary probe and snappy over megabytes that would not shrink.
   */
  opaque?: boolean;
}

export interface ParquetWriterOptions {
  /** Rows per row group; also the most rows held in memory. Default 1000. */
  rowGroupSize?: number;
  /** fsync the file before `close()` resolves. Default true. */
  durable?: boolean;
}

export interface ParquetRowWriter {
  /** Buffers the row; encodes and writes a row group when `rowGroupSize` rows are buffered. */
  writeRow(row: Record<string, unknown>): Promise<void>;
  /** Writes the last row group and the footer, fsyncs and closes the file. */
  close(): Promise<void>;
  /** Closes and deletes the file. Safe to call after a failure, and more than once. */
  abort(): Promise<void>;
  readonly rowCount: number;
  /** Per column, how many values had no exact conversion to the column type and were written as null. */
  readonly mismatches: Readonly<Record<string, number>>;
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * The column type for a value, as pyarrow would read it: integers → INT64 (a later larger id does not overflow),
 * other numbers → DOUBLE, bigint → INT64, boolean → BOOLEAN, bytes → BYTE_ARRAY, plain objects and arrays →
 * JSON, text, dates and null/undefined → STRING.
 */
export function inferColumnType(value: unknown): ParquetColumnType {
  if (typeof value === 'boolean') return 'BOOLEAN';
  if (typeof value === 'bigint') return 'INT64';
  if (typeof value === 'number') return Number.isSafeInteger(value) ? 'INT64' : 'DOUBLE';
  if (value instanceof Uint8Array) return 'BYTE_ARRAY';
  if (value instanceof Date) return 'STRING';
  if (value !== null && typeof value === 'object') return 'JSON';
  return 'STRING';
}

/**
 * The narrowest type that holds every value exactly: INT64 + DOUBLE → DOUBLE (when the integers fit a double),
 * any other mix → STRING. All-null → STRING.
 */
export function inferColumnTypeOf(values: Iterable<unknown>): ParquetColumnType {
  let type: ParquetColumnType | undefined;
  let unsafeForDouble = false;
  for (const value of values) {
    if (value === null || value === undefined) continue;
    const t = inferColumnType(value);
    if (
      typeof value === 'bigint' &&
      (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER))
    ) {
      unsafeForDouble = true;
    }
    if (type === undefined || type === t) type = t;
    else if ((type === 'INT64' && t === 'DOUBLE') || (type === 'DOUBLE' && t === 'INT64')) type = 'DOUBLE';
    else return 'STRING';
  }
  if (type === 'DOUBLE' && unsafeForDouble) return 'STRING';
  return type ?? 'STRING';
}

const NO_VALUE = Symbol('no exact conversion');

/** Converts `value` to what hyparquet-writer expects for `type`, or NO_VALUE when there is no exact conversion. */
function convertValue(value: unknown, type: ParquetColumnType): unknown {
  if (value === null || value === undefined) return null;
  switch (type) {
    case 'STRING':
      return typeof value === 'string' ? value : stringify(value);
    case 'JSON':
      return toJsonValue(value);
    case 'INT32': {
      const n = toExactNumber(value);
      return n !== undefined && Number.isInteger(n) && n >= INT32_MIN && n <= INT32_MAX ? n : NO_VALUE;
    }
    case 'INT64': {
      const b = toExactBigInt(value);
      return b !== undefined && b >= INT64_MIN && b <= INT64_MAX ? b : NO_VALUE;
    }
    case 'DOUBLE': {
      const n = toExactNumber(value);
      return n === undefined ? NO_VALUE : n;
    }
    case 'BOOLEAN':
      if (typeof value === 'boolean') return value;
      if (value === 'true') return true;
      if (value === 'false') return false;
      return NO_VALUE;
    case 'BYTE_ARRAY':
      if (value instanceof Uint8Array) return value;
      if (typeof value === 'string') return Buffer.from(value, 'utf8');
      return NO_VALUE;
  }
}

function toExactNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') {
    const n = Number(value);
    return BigInt(n) === value ? n : undefined;
  }
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value);
    return Number.isNaN(n) ? undefined : n;
  }
  return undefined;
}

function toExactBigInt(value: unknown): bigint | undefined {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : undefined;
  if (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value)) return BigInt(value.trim());
  return undefined;
}

/** Text for a non-string value in a STRING column. */
function stringify(value: unknown): string {
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value, jsonReplacer);
  return String(value);
}

/** A value hyparquet's JSON column encoder can serialise (it does not know bigint or bytes). */
function toJsonValue(value: unknown): unknown {
  if (typeof value === 'bigint' || value instanceof Uint8Array) return JSON.parse(JSON.stringify(value, jsonReplacer));
  if (value !== null && typeof value === 'object') return JSON.parse(JSON.stringify(value, jsonReplacer)) as unknown;
  return value;
}

/** A hyparquet-writer Writer that appends to a file: bytes accumulate in memory and go out at each row group. */
function fileByteWriter(handle: FileHandle): ByteWriter {
  const writer = new ByteWriter(64 * 1024);
  const flush = async (): Promise<void> => {
    if (writer.index === 0) return;
    const bytes = new Uint8Array(writer.buffer, 0, writer.index);
    let written = 0;
    while (written < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, written, bytes.length - written);
      written += bytesWritten;
    }
    writer.index = 0;
  };
  // ParquetWriter awaits flush() after each row group and finish() at the end.
  Object.assign(writer, { flush, finish: flush });
  return writer;
}

export async function openParquetWriter(
  path: string,
  columns: readonly ParquetColumn[],
  { rowGroupSize = 1000, durable = true }: ParquetWriterOptions = {},
): Promise<ParquetRowWriter> {
  if (!Number.isInteger(rowGroupSize) || rowGroupSize < 1) {
    throw invalidOption(`Expected a positive integer for rowGroupSize but received ${rowGroupSize}`);
  }
  const names = new Set<string>();
  for (const c of columns) {
    if (names.has(c.name)) throw invalidOption(`parquet column ${c.name} is declared twice`);
    names.add(c.name);
  }
  const schema = schemaFromColumnData({
    columnData: columns.map((c) => ({ name: c.name, data: [], type: c.type, nullable: true })),
  });
  const handle = await open(path, 'w');
  const byteWriter = fileByteWriter(handle);
  let parquet: ParquetWriter;
  try {
    parquet = new ParquetWriter({ writer: byteWriter, schema, createdBy: 'clipstream' });
  } catch (err) {
    await handle.close();
    throw err;
  }

  let buffers: unknown[][] = columns.map(() => []);
  let buffered = 0;
  let rowCount = 0;
  let state: 'open' | 'closed' | 'aborted' = 'open';
  let chain: Promise<void> = Promise.resolve();
  let failure: unknown;
  const mismatches: Record<string, number> = Object.fromEntries(columns.map((c) => [c.name, 0]));

  const writeGroup = async (): Promise<void> => {
    if (buffered === 0) return;
    const columnData = columns.map((c, i) => ({
      name: c.name,
      data: buffers[i]!,
      ...(c.opaque ? { encoding: 'PLAIN' as const, codec: 'UNCOMPRESSED' as const, statistics: false } : {}),
    }));
    const n = buffered;
    buffers = columns.map(() => []);
    buffered = 0;
    await parquet.write({ columnData, rowGroupSize: n });
  };

  /** Serialises operations so a caller that does not await still gets row groups in order. */
  const enqueue = (op: () => Promise<void>): Promise<void> => {
    const next = chain.then(() => {
      if (failure !== undefined) throw failure;
      return op();
    });
    chain = next.catch((err: unknown) => {
      failure ??= err;
    });
    return next;
  };

  const assertOpen = (what: string) => {
    if (state !== 'open')
      throw internalError(`parquet writer for ${path}: ${what} after ${state === 'closed' ? 'close' : 'abort'}`);
    if (failure !== undefined) throw failure;
  };

  return {
    get rowCount() {
      return rowCount;
    },
    mismatches,
    writeRow(row) {
      assertOpen('writeRow');
      for (let i = 0; i < columns.length; i++) {
        const column = columns[i]!;
        let value = convertValue(row[column.name], column.type);
        if (value === NO_VALUE) {
          mismatches[column.name]! += 1;
          value = null;
        }
        buffers[i]!.push(value);
      }
      buffered += 1;
      rowCount += 1;
      if (buffered >= rowGroupSize) return enqueue(writeGroup);
      return chain;
    },
    async close() {
      assertOpen('close');
      state = 'closed';
      try {
        await enqueue(async () => {
          await writeGroup();
          await parquet.finish();
          if (durable) await handle.sync();
        });
      } catch (err) {
        await handle.close().catch(() => {});
        await rm(path, { force: true });
        throw err;
      }
      await handle.close();
    },
    async abort() {
      if (state === 'aborted') return;
      const wasOpen = state === 'open';
      state = 'aborted';
      await chain;
      if (wasOpen) await handle.close().catch(() => {});
      await rm(path, { force: true });
    },
  };
}
