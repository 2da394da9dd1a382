import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { inputMalformed, inputNotFound, invalidOption, isClipstreamError } from '../core/errors.js';
import type { UrlRow } from '../core/types.js';
import { MAX_JSON_DEPTH, nestedDeeperThan } from './json-value.js';
import { naturalValue } from './parquet-read.js';
import { isS3Url, s3Join, s3List, s3Size } from './s3.js';
import { fileRecords, type BaseFormat, type ColumnRequest, type Cursor, type RawRecord } from './url-list-formats.js';

/**
 * Url lists as img2dataset reads them (reference §1, §5): txt, csv, tsv, json, jsonl (each optionally gzipped) and
 * parquet; a file or a folder of files. Everything streams: a folder is read one file at a time, a text file chunk
 * by chunk, a parquet file one row group at a time. Memory is bounded by a chunk / record / row group, never by the
 * size of the list.
 */

/** img2dataset's input formats (`--input-format`). */
export const INPUT_FORMATS = Object.freeze([
  'txt',
  'txt.gz',
  'csv',
  'csv.gz',
  'tsv',
  'tsv.gz',
  'json',
  'json.gz',
  'jsonl',
  'jsonl.gz',
  'parquet',
] as const);
export type InputFormat = (typeof INPUT_FORMATS)[number];

export interface UrlListOptions {
  /** A file, or a folder: every file whose name ends with `.${inputFormat}`, sorted lexicographically. */
  urlList: string;
  /** Default 'txt'. */
  inputFormat: InputFormat;
  /** Default 'url'. Ignored for txt, whose only column is `url`. */
  urlCol: string;
  captionCol?: string | undefined;
  /** img2dataset's save_additional_columns: copied into `UrlRow.columns` with their natural types. */
  additionalColumns: string[];
}

/** How many files are checked at once by `inspectUrlList`. */
const INSPECT_CONCURRENCY = 8;

/**
 * Checks everything that can be checked up front — the path exists, a folder has matching files, gzip magic,
 * parquet footer and schema, the csv/tsv header or the first json/jsonl record of every file has the url column, the
 * caption column and every additional column — and throws a ClipstreamError naming the file and the column.
 * Returns the files to read, in order. Cheap: reads headers and footers only.
 */
export async function inspectUrlList(options: UrlListOptions): Promise<string[]> {
  checkOptions(options);
  const files = await listUrlFiles(options.urlList, options.inputFormat);
  for (let i = 0; i < files.length; i += INSPECT_CONCURRENCY) {
    const batch = files.slice(i, i + INSPECT_CONCURRENCY);
    const results = await Promise.allSettled(batch.map((file) => checkFile(file, options)));
    // The first failing file in list order, whatever finished first.
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
  return files;
}

/**
 * Streams the rows of every file in order; `index` counts over all files from 0. A blank txt line is not a row.
 * A row whose url cell is null or empty is still a row (url ''), so row keys stay aligned with the input; the
 * downloader records it as a failure. `caption` is null when there is no caption column or the cell is null.
 *
 * `startIndex` skips the first rows (resume): parquet skips whole row groups from the footer's counts without
 * reading them; text formats parse and drop. The first row yielded has `index === startIndex`.
 */
export async function* readUrlList(options: UrlListOptions, startIndex = 0): AsyncGenerator<UrlRow> {
  checkOptions(options);
  if (!Number.isSafeInteger(startIndex) || startIndex < 0) {
    throw invalidOption(`Expected a non-negative integer for startIndex but received ${String(startIndex)}`);
  }
  const files = await listUrlFiles(options.urlList, options.inputFormat);
  const { format, gz } = splitFormat(options.inputFormat);
  const columns = columnRequest(options, format);
  const urlKey = columns.urlCol;
  const captionKey = columns.captionCol;
  const extra = columns.additionalColumns;
  const cursor: Cursor = { skip: startIndex, fileRows: 0 };
  let index = startIndex;
  for (const file of files) {
    cursor.fileRows = 0;
    try {
      for await (const batch of fileRecords(file, { format, gz, columns, cursor, checkOnly: false })) {
        for (const record of batch) yield toUrlRow(index++, record, urlKey, captionKey, extra, file);
      }
    } catch (err) {
      throw asInputError(err, file, cursor.fileRows);
    }
  }
}

/** The files of a url list: the file itself, or a folder's `*.{inputFormat}` files sorted (img2dataset's glob). */
export async function listUrlFiles(urlList: string, inputFormat: InputFormat): Promise<string[]> {
  if (isS3Url(urlList)) return listUrlObjects(urlList, inputFormat);
  let info;
  try {
    info = await stat(urlList);
  } catch (err) {
    throw inputNotFound(`url list not found: ${urlList}`, {
      hint: 'Check --url-list: it must be a file or a folder of files.',
      cause: err,
    });
  }
  if (!info.isDirectory()) return [urlList];
  const suffix = `.${inputFormat}`;
  const entries = await readdir(urlList, { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries) {
    if (!entry.name.endsWith(suffix) || entry.name === suffix) continue;
    const path = join(urlList, entry.name);
    if (entry.isFile() || (entry.isSymbolicLink() && (await stat(path).catch(() => undefined))?.isFile()))
      files.push(path);
  }
  if (files.length === 0) {
    throw inputNotFound(`no *${suffix} files in the folder ${urlList}`, {
      hint: `Check --url-list and --input-format (a folder is read as every file matching *${suffix}).`,
    });
  }
  // Code-unit order, as Python's sorted() on the glob.
  return files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** An `s3://` url list: the object itself, or the `*.{inputFormat}` objects right under the prefix, sorted. */
async function listUrlObjects(urlList: string, inputFormat: InputFormat): Promise<string[]> {
  const suffix = `.${inputFormat}`;
  if ((await s3Size(urlList)) !== undefined) return [urlList];
  const names = (await s3List(urlList)).filter((n) => n.endsWith(suffix) && n !== suffix && !n.endsWith('/'));
  if (names.length === 0) {
    throw inputNotFound(`no object ${urlList} and no *${suffix} objects under ${urlList.replace(/\/*$/, '/')}`, {
      hint: `Check --url-list and --input-format (a prefix is read as every object matching *${suffix}).`,
    });
  }
  return names.map((n) => s3Join(urlList, n));
}

function checkOptions(options: UrlListOptions): void {
  if (!(INPUT_FORMATS as readonly string[]).includes(options.inputFormat)) {
    throw invalidOption(
      `Expected one of ${INPUT_FORMATS.join(', ')} for inputFormat but received ${JSON.stringify(options.inputFormat)}`,
    );
  }
  if (typeof options.urlList !== 'string' || options.urlList === '') {
    throw invalidOption(`Expected a file or folder path for urlList but received ${JSON.stringify(options.urlList)}`);
  }
  if (typeof options.urlCol !== 'string' || options.urlCol === '') {
    throw invalidOption(`Expected a column name for urlCol but received ${JSON.stringify(options.urlCol)}`);
  }
}

function splitFormat(inputFormat: InputFormat): { format: BaseFormat; gz: boolean } {
  const gz = inputFormat.endsWith('.gz');
  return { format: (gz ? inputFormat.slice(0, -3) : inputFormat) as BaseFormat, gz };
}

function columnRequest(options: UrlListOptions, format: BaseFormat): ColumnRequest {
  return {
    urlCol: format === 'txt' ? 'url' : options.urlCol,
    captionCol: options.captionCol,
    additionalColumns: [...new Set(options.additionalColumns ?? [])],
  };
}

async function checkFile(file: string, options: UrlListOptions): Promise<void> {
  const { format, gz } = splitFormat(options.inputFormat);
  const cursor: Cursor = { skip: 0, fileRows: 0 };
  try {
    for await (const _ of fileRecords(file, {
      format,
      gz,
      columns: columnRequest(options, format),
      cursor,
      checkOnly: true,
    })) {
      // checkOnly yields nothing
    }
  } catch (err) {
    throw asInputError(err, file, cursor.fileRows);
  }
}

const own = (record: RawRecord, key: string): unknown => (Object.hasOwn(record, key) ? record[key] : undefined);

function toUrlRow(
  index: number,
  record: RawRecord,
  urlKey: string,
  captionKey: string | undefined,
  extra: readonly string[],
  file: string,
): UrlRow {
  let tooDeep: string[] | undefined;
  // A value nested deeper than MAX_JSON_DEPTH (json/jsonl) becomes null and fails its row, not the shard.
  const cell = (key: string): unknown => {
    const value = own(record, key);
    if (!nestedDeeperThan(value)) return value;
    tooDeep ??= [];
    if (!tooDeep.includes(key)) tooDeep.push(key);
    return null;
  };
  const columns: Record<string, unknown> = {};
  for (const col of extra) columns[col] = naturalValue(cell(col));
  const row: UrlRow = {
    index,
    url: asText(cell(urlKey)) ?? '',
    caption: captionKey === undefined ? null : asText(cell(captionKey)),
    columns,
  };
  if (tooDeep !== undefined) {
    row.error = `${tooDeep.map((c) => `column "${c}"`).join(', ')} of this row of ${file} nest${tooDeep.length === 1 ? 's' : ''} deeper than ${MAX_JSON_DEPTH} levels`;
  }
  return row;
}

/** A cell as text: strings as they are, null/undefined → null, objects as JSON, anything else via String(). */
function asText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && !(value instanceof Date)) {
    return JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  }
  return String(value);
}

/** Errors from the byte streams (zlib, fs) become ClipstreamErrors naming the file. */
function asInputError(err: unknown, file: string, rows: number): unknown {
  if (isClipstreamError(err)) return err;
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = e instanceof Error ? e.message : String(err);
  if (code.startsWith('Z_') || /zlib|gzip|incorrect header|unexpected end of file/i.test(message)) {
    return inputMalformed(`corrupt gzip data in ${file} after ${rows} rows: ${message}`, {
      hint: 'The file is truncated or damaged; re-download or re-compress it.',
      cause: err,
    });
  }
  if (code === 'ENOENT') return inputNotFound(`url list not found: ${file}`, { cause: err });
  if (code.startsWith('E')) {
    return inputNotFound(`cannot read ${file}: ${message}`, { cause: err });
  }
  return err;
}
