import { open } from 'node:fs/promises';
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { inputMalformed, missingColumn } from '../core/errors.js';
import { openByteSource, sequentialChunks } from './byte-source.js';
import { CsvParser, convertCell, inferColumnKind, type ColumnKind, type CsvRecord } from './csv.js';
import { JsonArraySplitter, parseJsonLine, type JsonElement } from './json-stream.js';
import { decodeUtf8, splitLines } from './lines.js';
import { openParquet } from './parquet-read.js';
import { isS3Url } from './s3.js';

/** One file format, without its compression. */
export type BaseFormat = 'txt' | 'csv' | 'tsv' | 'json' | 'jsonl' | 'parquet';

/** What a reader needs to know about the columns: the ones it must find and return. */
export interface ColumnRequest {
  /** The url column, already `url` for txt. */
  urlCol: string;
  captionCol?: string | undefined;
  additionalColumns: readonly string[];
}

/**
 * Shared between the readers of all files of one list: how many rows are still to be skipped (`startIndex`), and
 * how many rows of the current file have been consumed (for error messages).
 */
export interface Cursor {
  skip: number;
  fileRows: number;
}

/** One input row before it becomes a `UrlRow`: column name → value (only the requested columns need be there). */
export type RawRecord = Record<string, unknown>;

/** Rows sampled at the top of each csv/tsv file to decide the type of each column (pyarrow uses its first block). */
export const CSV_TYPE_SAMPLE_ROWS = 1000;

export interface FileReadOptions {
  format: BaseFormat;
  gz: boolean;
  columns: ColumnRequest;
  cursor: Cursor;
  /** Stop after the header / first record / footer has been checked: yields nothing. */
  checkOnly: boolean;
}

/**
 * The records of one file, in order, in batches (one per chunk or row group: the async machinery runs per batch, not
 * per row), after `cursor.skip` of them have been skipped. The columns are checked as soon
 * as they are known (csv header, first json record, parquet footer): a missing one → MISSING_COLUMN naming the file.
 */
export async function* fileRecords(file: string, o: FileReadOptions): AsyncGenerator<RawRecord[]> {
  if (o.format === 'parquet') {
    yield* parquetRecords(file, o);
    return;
  }
  const bytes = await openBytes(file, o.gz, o.format);
  try {
    const text = decodeUtf8(bytes);
    switch (o.format) {
      case 'txt':
        yield* txtRecords(file, text, o);
        break;
      case 'csv':
      case 'tsv':
        yield* csvRecords(file, text, o.format === 'csv' ? ',' : '\t', o);
        break;
      case 'jsonl':
        yield* jsonlRecords(file, text, o);
        break;
      case 'json':
        yield* jsonRecords(file, text, o);
        break;
    }
  } finally {
    bytes.destroy();
  }
}

/** The columns every file must have. */
export function checkColumns(file: string, available: readonly string[], c: ColumnRequest, format: BaseFormat): void {
  const have = new Set(available);
  const wanted: [string, string][] = [[c.urlCol, 'url']];
  if (c.captionCol !== undefined) wanted.push([c.captionCol, 'caption']);
  for (const col of c.additionalColumns) wanted.push([col, 'additional']);
  for (const [col, role] of wanted) {
    if (have.has(col)) continue;
    const hint =
      format === 'txt'
        ? 'A txt url list has a single column, "url" (one url per line); use csv, tsv, json, jsonl or parquet for captions and other columns.'
        : role === 'url'
          ? 'Name the url column with --url-col (default "url").'
          : role === 'caption'
            ? 'Name the caption column with --caption-col, or leave it out.'
            : 'Check --save-additional-columns (and the column of --verify-hash); use --url-col / --caption-col for the url and caption columns.';
    throw missingColumn(
      `column "${col}" not found in ${file}; columns are: ${available.length > 0 ? available.join(', ') : '(none)'}`,
      { hint },
    );
  }
}

const GZIP_MAGIC = [0x1f, 0x8b] as const;

/**
 * The raw bytes of a text file, gunzipped when `gz`. The gzip magic is checked up front both ways: a `.gz` format on
 * a plain file, or a plain format on a gzip file, is refused with the format to use. An empty file is empty either
 * way. Errors of the gunzip stream (corrupt or truncated data) surface while iterating and are mapped by the caller.
 */
async function openBytes(file: string, gz: boolean, format: BaseFormat): Promise<Readable> {
  if (isS3Url(file)) return openObjectBytes(file, gz, format);
  const handle = await open(file, 'r');
  let isGzip: boolean;
  let empty: boolean;
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    empty = bytesRead === 0;
    isGzip = bytesRead === 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1];
    checkGzipMagic(file, gz, format, isGzip, empty);
  } catch (err) {
    await handle.close();
    throw err;
  }
  const raw = handle.createReadStream({ start: 0 });
  if (!gz || empty) return raw;
  // pipeline: destroying the gunzip end (consumer stopped early) also closes the file, and errors travel downstream.
  return pipeline(raw, createGunzip(), () => {});
}

function checkGzipMagic(file: string, gz: boolean, format: BaseFormat, isGzip: boolean, empty: boolean): void {
  if (gz && !isGzip && !empty) {
    throw inputMalformed(`${file} is not gzip-compressed (no gzip magic bytes) but --input-format is ${format}.gz`, {
      hint: `Use --input-format ${format} for an uncompressed file.`,
    });
  }
  if (!gz && isGzip) {
    throw inputMalformed(`${file} is gzip-compressed but --input-format is ${format}`, {
      hint: `Use --input-format ${format}.gz.`,
    });
  }
}

/** An object's bytes (s3://), read sequentially through its byte source; the same checks as a local file. */
async function openObjectBytes(url: string, gz: boolean, format: BaseFormat): Promise<Readable> {
  const { source, head } = await openByteSource(url, { probe: 2 });
  const isGzip = head.length === 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1];
  checkGzipMagic(url, gz, format, isGzip, head.length === 0);
  const raw = Readable.from(sequentialChunks(source));
  if (!gz || head.length === 0) return raw;
  return pipeline(raw, createGunzip(), () => {});
}

/** Applies `cursor.skip` to a batch of rows, counting them for error messages. */
function skipped<T>(batch: T[], cursor: Cursor): T[] {
  cursor.fileRows += batch.length;
  if (cursor.skip === 0) return batch;
  const n = Math.min(cursor.skip, batch.length);
  cursor.skip -= n;
  return n === batch.length ? [] : batch.slice(n);
}

async function* txtRecords(file: string, text: AsyncIterable<string>, o: FileReadOptions): AsyncGenerator<RawRecord[]> {
  checkColumns(file, ['url'], o.columns, 'txt');
  if (o.checkOnly) return;
  for await (const lines of splitLines(text, file)) {
    const batch: RawRecord[] = [];
    for (const { text: line } of lines) {
      const url = line.trim();
      if (url !== '') batch.push({ url }); // a blank line is not a row (pyarrow skips empty lines)
    }
    const rows = skipped(batch, o.cursor);
    if (rows.length > 0) yield rows;
  }
}

async function* jsonlRecords(
  file: string,
  text: AsyncIterable<string>,
  o: FileReadOptions,
): AsyncGenerator<RawRecord[]> {
  let first = true;
  for await (const lines of splitLines(text, file)) {
    const batch: RawRecord[] = [];
    let failure: { error: unknown } | undefined;
    try {
      for (const { text: line, line: n } of lines) {
        if (line.trim() === '') continue;
        const record = parseJsonLine(line, n, file);
        if (first) {
          first = false;
          checkColumns(file, Object.keys(record), o.columns, 'jsonl');
          if (o.checkOnly) return;
        }
        batch.push(record);
      }
    } catch (error) {
      failure = { error };
    }
    const rows = skipped(batch, o.cursor);
    if (rows.length > 0) yield rows; // the good rows before a bad line go out first
    if (failure) throw failure.error;
  }
}

async function* jsonRecords(
  file: string,
  text: AsyncIterable<string>,
  o: FileReadOptions,
): AsyncGenerator<RawRecord[]> {
  const splitter = new JsonArraySplitter(file);
  let first = true;
  for await (const chunk of text) {
    const elements: JsonElement[] = [];
    let failure: { error: unknown } | undefined;
    try {
      splitter.push(chunk, elements);
    } catch (error) {
      failure = { error };
    }
    if (first && elements.length > 0) {
      first = false;
      checkColumns(file, Object.keys(elements[0]!.value), o.columns, 'json');
      if (o.checkOnly) return;
    }
    const rows = skipped(
      elements.map((e) => e.value),
      o.cursor,
    );
    if (rows.length > 0) yield rows; // the good elements before a bad one go out first
    if (failure) throw failure.error;
  }
  splitter.end();
}

async function* csvRecords(
  file: string,
  text: AsyncIterable<string>,
  delimiter: string,
  o: FileReadOptions,
): AsyncGenerator<RawRecord[]> {
  const parser = new CsvParser({ delimiter, source: file });
  const { urlCol, captionCol, additionalColumns } = o.columns;
  let header: string[] | undefined;
  let urlAt = -1;
  let captionAt = -1;
  let extraAt: number[] = [];
  let kinds: ColumnKind[] | undefined;
  let sample: CsvRecord[] = [];

  const toRecord = ({ fields }: CsvRecord): RawRecord => {
    const record: RawRecord = { [urlCol]: fields[urlAt] ?? '' };
    if (captionCol !== undefined) record[captionCol] = fields[captionAt];
    for (let k = 0; k < additionalColumns.length; k++) {
      record[additionalColumns[k]!] = convertCell(kinds![k]!, fields[extraAt[k]!]);
    }
    return record;
  };
  const inferKinds = () => {
    kinds = extraAt.map((at) => inferColumnKind(sample.map((r) => r.fields[at])));
  };
  /**
   * Header first, then rows; rows wait in `sample` until the column types are known. Returns the rows ready to go
   * out, or null to stop (checkOnly).
   */
  const take = (records: CsvRecord[]): RawRecord[] | null => {
    let i = 0;
    if (header === undefined) {
      const first = records[0];
      if (first === undefined) return [];
      checkColumns(file, first.fields, o.columns, delimiter === ',' ? 'csv' : 'tsv');
      header = first.fields;
      if (o.checkOnly) return null;
      urlAt = header.indexOf(urlCol);
      captionAt = captionCol === undefined ? -1 : header.indexOf(captionCol);
      extraAt = additionalColumns.map((col) => header!.indexOf(col));
      i = 1;
    }
    let ready: CsvRecord[];
    if (kinds === undefined) {
      for (; i < records.length && sample.length < CSV_TYPE_SAMPLE_ROWS; i++) sample.push(records[i]!);
      if (sample.length < CSV_TYPE_SAMPLE_ROWS) return [];
      inferKinds();
      ready = sample.concat(records.slice(i));
      sample = [];
    } else {
      ready = i === 0 ? records : records.slice(i);
    }
    // Skipped rows are never converted.
    return skipped(ready, o.cursor).map(toRecord);
  };

  /** Rows still waiting for their column types (a file shorter than the sample, or an error early on). */
  const flushSample = (): RawRecord[] => {
    if (kinds !== undefined || header === undefined) return [];
    inferKinds();
    const rest = skipped(sample, o.cursor).map(toRecord);
    sample = [];
    return rest;
  };

  let failure: { error: unknown } | undefined;
  try {
    for await (const chunk of text) {
      const records: CsvRecord[] = [];
      try {
        parser.push(chunk, records);
      } catch (error) {
        failure = { error };
      }
      const rows = take(records);
      if (rows === null) return;
      if (rows.length > 0) yield rows;
      if (failure) break;
    }
    if (!failure) {
      const rows = take(parser.end());
      if (rows === null) return;
      if (rows.length > 0) yield rows;
    }
  } catch (error) {
    // e.g. corrupt gzip: deliver what was parsed, then fail.
    failure = { error };
  }
  const rest = flushSample();
  if (rest.length > 0) yield rest;
  if (failure) throw failure.error;
}

async function* parquetRecords(file: string, o: FileReadOptions): AsyncGenerator<RawRecord[]> {
  const pq = await openParquet(file);
  try {
    checkColumns(file, pq.columns, o.columns, 'parquet');
    if (o.checkOnly) return;
    const { urlCol, captionCol, additionalColumns } = o.columns;
    const wanted = [...new Set([urlCol, ...(captionCol === undefined ? [] : [captionCol]), ...additionalColumns])];
    for (const group of pq.rowGroups) {
      // Whole row groups are skipped from the footer's row counts, without reading them.
      if (o.cursor.skip >= group.rows) {
        o.cursor.skip -= group.rows;
        o.cursor.fileRows += group.rows;
        continue;
      }
      const from = group.start + o.cursor.skip;
      o.cursor.fileRows += o.cursor.skip;
      o.cursor.skip = 0;
      const rows = await pq.readRows(wanted, from, group.start + group.rows);
      o.cursor.fileRows += rows.length;
      if (rows.length > 0) yield rows;
    }
  } finally {
    await pq.close();
  }
}
