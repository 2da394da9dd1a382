import { open, type FileHandle } from 'node:fs/promises';
import { parquetMetadataAsync, parquetRead, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { inputMalformed, isClipstreamError } from '../core/errors.js';
import { isHttpUrl, openByteSource, type ByteSource } from './byte-source.js';
import { pageCheckedBuffer } from './parquet-pages.js';
import { isS3Url } from './s3.js';

/** A parquet file opened for reading one row group at a time. Close it when done. */
export interface ParquetFile {
  path: string;
  metadata: FileMetaData;
  /** Top-level column names, in schema order. */
  columns: string[];
  /** Row groups in file order: first row and row count. */
  rowGroups: { start: number; rows: number }[];
  numRows: number;
  /**
   * Rows `[rowStart, rowEnd)` of the given columns as objects. Call it with ranges inside one row group so only
   * that group's column chunks are read (hyparquet reads whole column chunks of every group the range touches).
   */
  readRows(columns: string[], rowStart: number, rowEnd: number): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

/** An hyparquet AsyncBuffer over an open file: every slice is one positioned read, nothing else is held. */
export function asyncBufferFromHandle(handle: FileHandle, byteLength: number): AsyncBuffer {
  return {
    byteLength,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const stop = Math.min(end ?? byteLength, byteLength);
      const length = Math.max(0, stop - start);
      const out = new ArrayBuffer(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(
          new Uint8Array(out, done, length - done),
          0,
          length - done,
          start + done,
        );
        if (bytesRead === 0) break; // the file shrank under us; hyparquet reports the short buffer
        done += bytesRead;
      }
      return done === length ? out : out.slice(0, done);
    },
  };
}

/**
 * Opens a parquet file and reads its footer: a local file, or one at an http(s) or s3:// URL (read in place through
 * its byte source). A file that is not parquet → INPUT_MALFORMED naming it.
 */
export async function openParquet(path: string): Promise<ParquetFile> {
  if (isHttpUrl(path) || isS3Url(path)) {
    const { source } = await openByteSource(path);
    try {
      return await parquetFromBuffer(path, asyncBufferFromSource(source), () => source.close());
    } catch (err) {
      await source.close();
      throw err;
    }
  }
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    return await parquetFromBuffer(path, asyncBufferFromHandle(handle, size), () => handle.close());
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** An hyparquet AsyncBuffer over a byte source (a URL, an S3 object): every slice is one read. */
function asyncBufferFromSource(source: ByteSource): AsyncBuffer {
  return {
    byteLength: source.size,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const stop = Math.min(end ?? source.size, source.size);
      const out = new Uint8Array(Math.max(0, stop - start));
      await source.readInto(start, out);
      return out.buffer;
    },
  };
}

async function parquetFromBuffer(path: string, file: AsyncBuffer, close: () => Promise<void>): Promise<ParquetFile> {
  let metadata: FileMetaData;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (err) {
    throw inputMalformed(`not a valid parquet file: ${path} (${(err as Error).message})`, {
      hint: 'Check --input-format, or re-export the file.',
      cause: err,
    });
  }
  const checked = pageCheckedBuffer(file, metadata, path);
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  const rowGroups: ParquetFile['rowGroups'] = [];
  let start = 0;
  for (const group of metadata.row_groups) {
    const rows = Number(group.num_rows);
    rowGroups.push({ start, rows });
    start += rows;
  }
  return {
    path,
    metadata,
    columns,
    rowGroups,
    numRows: start,
    async readRows(wanted, rowStart, rowEnd) {
      let rows: Record<string, unknown>[] = [];
      try {
        await parquetRead({
          file: checked,
          metadata,
          compressors,
          columns: wanted,
          rowStart,
          rowEnd,
          rowFormat: 'object',
          onComplete: (r) => {
            rows = r;
          },
        });
      } catch (err) {
        if (isClipstreamError(err)) throw err;
        throw inputMalformed(`cannot read rows ${rowStart}–${rowEnd - 1} of ${path}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      return rows;
    },
    close,
  };
}

/**
 * parquet INT64 arrives as bigint: a value that fits a double exactly becomes a number, so an int column reads the
 * same from parquet as from csv or json (and serialises to JSON). Larger values stay bigint.
 */
/**
 * naturalValue for values that go into JSON (search results, plans, sample json): an integer beyond 2^53 as its
 * decimal string, exact (JSON.stringify refuses a bigint, and a number would round it).
 */
export function jsonSafeValue(value: unknown): unknown {
  const v = naturalValue(value);
  return typeof v === 'bigint' ? v.toString() : v;
}

export function naturalValue(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }
  if (value === undefined) return null;
  return value;
}
