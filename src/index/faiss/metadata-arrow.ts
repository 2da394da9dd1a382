/**
 * An Arrow IPC *file* (clip back's `use_arrow` metadata, e.g. `0_en.arrow`) read in place: the footer (schema and
 * record-batch blocks) and each batch's row count (its small metadata message) are read at open; a row is read by
 * decoding only its record batch, fetched by range through apache-arrow's file reader over our ByteSource.
 */
import type { FileHandle } from 'node:fs/promises';
import { RecordBatchReader, Type, type DataType, type RecordBatch } from 'apache-arrow';
import { Footer } from 'apache-arrow/ipc/metadata/file';
import { Message } from 'apache-arrow/ipc/metadata/message';
import { inputMalformed } from '../../core/errors.js';
import { readBytes, type ByteSource } from '../../io/byte-source.js';
import { jsonSafeValue } from '../../io/parquet-read.js';
import type { ColumnType } from '../info.js';
import type { RowGroupFile } from './metadata-parquet.js';

const MAGIC = 'ARROW1';
const MAX_FOOTER = 64 * 1024 * 1024;
/** A batch's metadata message (a flatbuffer of field nodes and buffer offsets) is small; past this it is refused. */
const MAX_MESSAGE = 16 * 1024 * 1024;
/** Row counts of a file's batches are read this many at a time (one small range read each). */
const PARALLEL = 16;

/** What apache-arrow's AsyncRandomAccessFile needs of a node FileHandle, served by a ByteSource. */
function fileHandleOf(source: ByteSource) {
  return {
    fd: -1,
    stat: async () => ({ size: source.size }),
    read: async (buffer: Uint8Array, offset: number, length: number, position: number) => {
      const n = Math.max(0, Math.min(length, source.size - position));
      await source.readInto(position, buffer.subarray(offset, offset + n));
      return { bytesRead: n, buffer };
    },
    close: async () => {},
  };
}

export async function openArrowFooter(source: ByteSource): Promise<RowGroupFile> {
  const bad = (why: string) =>
    inputMalformed(`not an Arrow IPC file: ${source.name} ${why}`, {
      hint: 'clip back reads the IPC *file* format (pyarrow.ipc.new_file, parquet_to_arrow); convert streams with it.',
    });
  if (source.size < 18) throw bad(`is ${source.size} bytes`);
  const tail = await readBytes(source, source.size - 10, 10);
  const head = await readBytes(source, 0, 6);
  if (Buffer.from(head).toString('latin1') !== MAGIC || Buffer.from(tail.subarray(4)).toString('latin1') !== MAGIC) {
    throw bad('does not start and end with ARROW1');
  }
  const footerLength = new DataView(tail.buffer).getInt32(0, true);
  if (footerLength <= 0 || footerLength > Math.min(MAX_FOOTER, source.size - 18))
    throw bad(`claims a footer of ${footerLength} bytes`);
  let footer: ReturnType<typeof Footer.decode>;
  try {
    footer = Footer.decode(await readBytes(source, source.size - 10 - footerLength, footerLength));
  } catch (err) {
    throw bad(`has an unreadable footer (${(err as Error).message})`);
  }
  const columns = footer.schema.fields.map((f) => f.name);
  const types = Object.fromEntries(footer.schema.fields.map((f) => [f.name, arrowColumnType(f.type)]));
  const blocks = Array.from({ length: footer.numRecordBatches }, (_, i) => footer.getRecordBatch(i)!);
  const groups = new Array<number>(blocks.length);
  let next = 0;
  const worker = async () => {
    while (next < blocks.length) {
      const i = next++;
      groups[i] = await batchLength(source, blocks[i]!.offset, blocks[i]!.metaDataLength, bad);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, blocks.length) }, worker));

  let reader: Promise<Awaited<ReturnType<typeof openReader>>> | undefined;
  const decoded = new Map<number, RecordBatch>(); // the last batches read, for neighbouring ids
  return {
    columns,
    types,
    groups,
    async readGroupRows(group, from, to, wanted) {
      reader ??= openReader(source);
      let batch = decoded.get(group);
      if (!batch) {
        batch = (await (await reader).readRecordBatch(group)) ?? undefined;
        if (!batch) throw bad(`has no record batch ${group}`);
        decoded.set(group, batch);
        if (decoded.size > 2) decoded.delete(decoded.keys().next().value!);
      }
      const vectors = wanted.map((c) => batch.getChild(c));
      const rows: Record<string, unknown>[] = [];
      for (let r = from; r < to; r++) {
        const row: Record<string, unknown> = {};
        wanted.forEach((c, i) => (row[c] = vectors[i] ? jsonSafeValue(vectors[i].get(r)) : null));
        rows.push(row);
      }
      return rows;
    },
  };
}

/** Integers stay integers (as the parquet reader keeps them); nested values, dates and bytes are text. */
function arrowColumnType(type: DataType): ColumnType {
  switch (type.typeId) {
    case Type.Int:
      return 'int64';
    case Type.Float:
    case Type.Decimal:
      return 'float64';
    case Type.Bool:
      return 'bool';
    default:
      return 'string';
  }
}

async function openReader(source: ByteSource) {
  const reader = await RecordBatchReader.from(fileHandleOf(source) as unknown as FileHandle);
  await reader.open();
  if (!reader.isFile()) throw inputMalformed(`not an Arrow IPC file: ${source.name}`);
  return reader;
}

/** Rows of the record batch whose metadata message is at `offset` (continuation marker, length, flatbuffer). */
async function batchLength(
  source: ByteSource,
  offset: number,
  length: number,
  bad: (why: string) => Error,
): Promise<number> {
  if (length < 8 || length > MAX_MESSAGE || offset + length > source.size)
    throw bad(`has a record batch block of ${length} bytes at ${offset}`);
  const bytes = await readBytes(source, offset, length);
  const view = new DataView(bytes.buffer);
  const continued = view.getInt32(0, true) === -1;
  const size = view.getInt32(continued ? 4 : 0, true);
  const start = continued ? 8 : 4;
  if (size <= 0 || start + size > length) throw bad(`has a malformed record batch message at ${offset}`);
  const header = Message.decode(bytes.subarray(start, start + size)).header() as { length?: number } | null;
  if (!header || typeof header.length !== 'number' || header.length < 0)
    throw bad(`has a block at ${offset} that is not a record batch`);
  return header.length;
}
