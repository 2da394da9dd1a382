/**
 * A parquet metadata file read in place: its footer (row groups) kept in memory, rows read through their row group
 * only (hyparquet over a ByteSource: positioned reads or HTTP ranges).
 */
import { parquetMetadataAsync, parquetRead, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { inputMalformed, isClipstreamError } from '../../core/errors.js';
import { readBytes, type ByteSource } from '../../io/byte-source.js';
import { jsonSafeValue } from '../../io/parquet-read.js';
import { columnKinds } from '../../io/parquet-kinds.js';
import { storedTypeOf } from '../columns.js';
import type { ColumnType } from '../info.js';

/** Footers past this are refused: LAION's are tens of KB. */
const MAX_FOOTER = 64 * 1024 * 1024;

export interface RowGroupFile {
  columns: string[];
  /** Each column's type, as an index stores it (the page names them; nested values are text). */
  types: Record<string, ColumnType>;
  /** Rows per group (parquet row group, Arrow record batch), in file order. */
  groups: number[];
  /** Rows [from, to) of one group (group-relative), as objects of the given columns. */
  readGroupRows(group: number, from: number, to: number, columns: string[]): Promise<Record<string, unknown>[]>;
}

export function asyncBuffer(source: ByteSource): AsyncBuffer {
  return {
    byteLength: source.size,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const stop = Math.min(end ?? source.size, source.size);
      const bytes = await readBytes(source, start, Math.max(0, stop - start));
      return bytes.buffer as ArrayBuffer;
    },
  };
}

export async function openParquetFooter(source: ByteSource): Promise<RowGroupFile> {
  if (source.size < 12) throw inputMalformed(`not a parquet file: ${source.name} is ${source.size} bytes`);
  const tail = await readBytes(source, source.size - 8, 8);
  const view = new DataView(tail.buffer);
  const footer = view.getUint32(0, true);
  if (view.getUint32(4, true) !== 0x31524150)
    throw inputMalformed(`not a parquet file: ${source.name} does not end with PAR1`);
  if (footer > Math.min(MAX_FOOTER, source.size - 12)) {
    throw inputMalformed(`${source.name}: its parquet footer claims ${footer} bytes (the file is ${source.size})`);
  }
  const file = asyncBuffer(source);
  let metadata: FileMetaData;
  try {
    metadata = await parquetMetadataAsync(file, { initialFetchSize: footer + 8 });
  } catch (err) {
    throw inputMalformed(`not a valid parquet file: ${source.name} (${(err as Error).message})`, { cause: err });
  }
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  const groups = metadata.row_groups.map((g) => Number(g.num_rows));
  const starts: number[] = [];
  groups.reduce((at, n) => (starts.push(at), at + n), 0);
  const types = Object.fromEntries([...columnKinds(metadata)].map(([name, k]) => [name, storedTypeOf(k.kind)]));
  return {
    columns,
    types,
    groups,
    async readGroupRows(group, from, to, wanted) {
      let rows: Record<string, unknown>[] = [];
      const rowStart = starts[group]! + from;
      try {
        await parquetRead({
          file,
          metadata,
          compressors,
          columns: wanted,
          rowStart,
          rowEnd: starts[group]! + to,
          rowFormat: 'object',
          onComplete: (r) => {
            rows = r as Record<string, unknown>[];
          },
        });
      } catch (err) {
        if (isClipstreamError(err)) throw err;
        throw inputMalformed(
          `cannot read rows ${rowStart}–${starts[group]! + to - 1} of ${source.name}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      for (const row of rows) for (const key of Object.keys(row)) row[key] = jsonSafeValue(row[key]);
      return rows;
    },
  };
}
