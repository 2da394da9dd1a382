import type { AsyncBuffer, FileMetaData } from 'hyparquet';
import { parquetHeader } from 'hyparquet/src/column.js';
import { inputMalformed } from '../core/errors.js';

interface ChunkRange {
  column: string;
  start: number;
  end: number;
}

/**
 * An AsyncBuffer that checks the page headers of every column chunk a read brings in, before hyparquet decodes it.
 * hyparquet trusts them: a DATA_PAGE_V2 header without its (required) level lengths set its read offset to NaN, and
 * its RLE decoder then looped forever on byte 0 of the page, a hang no deadline can interrupt (found by the url
 * list property test, three flipped bytes in a 300-byte file). A header that is incomplete, or whose sizes leave
 * its chunk, is refused with INPUT_MALFORMED naming the file, column and offset. The checks read no extra bytes:
 * they walk the headers inside the buffer the read returns.
 */
export function pageCheckedBuffer(file: AsyncBuffer, metadata: FileMetaData, path: string): AsyncBuffer {
  const chunks = chunkRanges(metadata);
  const checked = new Set<number>();
  const read = async (start: number, end?: number): Promise<ArrayBuffer> => {
    const buffer = await file.slice(start, end);
    chunks.forEach((chunk, i) => {
      const offset = chunk.start - start;
      const length = chunk.end - chunk.start;
      // (a damaged footer gives NaN and negative offsets: hyparquet then fails on its own)
      if (checked.has(i) || !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
        return;
      if (offset + length > buffer.byteLength) return;
      checkPages(new DataView(buffer, offset, length), chunk, path);
      checked.add(i);
    });
    return buffer;
  };
  return {
    byteLength: file.byteLength,
    slice(start: number, end?: number): Promise<ArrayBuffer> {
      const result = read(start, end);
      // hyparquet starts the reads of a row group at once and may give up at the first failure without awaiting
      // the others: a rejection nobody awaits would end the process.
      result.catch(() => {});
      return result;
    },
  };
}

/** Every column chunk's byte range, from the footer (whose fields a damaged file may lack: those are skipped). */
function chunkRanges(metadata: FileMetaData): ChunkRange[] {
  const out: ChunkRange[] = [];
  for (const group of metadata.row_groups ?? []) {
    for (const chunk of group?.columns ?? []) {
      const meta = chunk?.meta_data;
      const first = meta?.dictionary_page_offset || meta?.data_page_offset;
      if (typeof first !== 'bigint' || typeof meta?.total_compressed_size !== 'bigint') continue;
      const start = Number(first);
      const column = Array.isArray(meta.path_in_schema) ? meta.path_in_schema.join('.') : '?';
      out.push({ column, start, end: start + Number(meta.total_compressed_size) });
    }
  }
  return out;
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function checkPages(view: DataView, chunk: ChunkRange, path: string): void {
  const reader = { view, offset: 0 };
  while (reader.offset < view.byteLength - 1) {
    const at = chunk.start + reader.offset;
    const refuse = (why: string) =>
      inputMalformed(`${path}: column ${chunk.column} has a damaged page header at byte ${at}: ${why}`, {
        hint: 'The file is truncated or damaged; re-export it.',
      });
    let header: ReturnType<typeof parquetHeader>;
    try {
      header = parquetHeader(reader);
    } catch (err) {
      throw refuse((err as Error).message);
    }
    const problem = pageProblem(header, view.byteLength - reader.offset);
    if (problem) throw refuse(problem);
    reader.offset += header.compressed_page_size;
  }
}

/** What makes a page header unusable, or undefined. */
function pageProblem(h: ReturnType<typeof parquetHeader>, left: number): string | undefined {
  if (!isCount(h.compressed_page_size) || !isCount(h.uncompressed_page_size)) return 'no page sizes';
  if (h.compressed_page_size > left) return `a page of ${h.compressed_page_size} bytes where ${left} are left`;
  switch (h.type) {
    case 'DATA_PAGE': {
      const d = h.data_page_header;
      return d && isCount(d.num_values) && d.encoding !== undefined ? undefined : 'an incomplete data page header';
    }
    case 'DATA_PAGE_V2': {
      const d = h.data_page_header_v2;
      if (
        !d ||
        ![
          d.num_values,
          d.num_nulls,
          d.num_rows,
          d.definition_levels_byte_length,
          d.repetition_levels_byte_length,
        ].every(isCount) ||
        d.encoding === undefined
      ) {
        return 'an incomplete data page (v2) header';
      }
      if (d.num_nulls > d.num_values) return `${d.num_nulls} nulls among ${d.num_values} values`;
      const levels = d.definition_levels_byte_length + d.repetition_levels_byte_length;
      return levels > h.compressed_page_size || levels > h.uncompressed_page_size
        ? `${levels} bytes of levels in a page of ${h.compressed_page_size}`
        : undefined;
    }
    case 'DICTIONARY_PAGE':
      return h.dictionary_page_header && isCount(h.dictionary_page_header.num_values)
        ? undefined
        : 'an incomplete dictionary page header';
    case 'INDEX_PAGE':
      return undefined;
    default:
      return 'an unknown page type';
  }
}
