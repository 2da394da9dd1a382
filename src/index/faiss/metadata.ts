/**
 * Metadata of a faiss index in place: a `metadata/` folder of parquet files (clip-retrieval's layout) or Arrow IPC
 * files (clip back's `use_arrow`), rows concatenated in the files' lexicographic path order = index ids, as clip back
 * maps them. Footers stay in memory; a row is read through its row group / record batch, locally or over HTTP,
 * never a whole file. At most OPEN_FILES files are open at once (LAION's H/14 metadata is ~5 900 parquet files).
 */
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { inputNotFound, invalidOption, missingColumn } from '../../core/errors.js';
import { withBlockCache } from '../../io/block-cache.js';
import { openByteSource, type ByteSource, type HttpSourceOptions } from '../../io/byte-source.js';
import type { ColumnType } from '../info.js';
import { openArrowFooter } from './metadata-arrow.js';
import { openParquetFooter, type RowGroupFile } from './metadata-parquet.js';

export type MetadataFormat = 'parquet' | 'arrow';

export interface MetadataFileInfo {
  /** Path or URL. */
  name: string;
  format: MetadataFormat;
  /** First global row (= index id) of the file. */
  start: number;
  rows: number;
  bytes: number;
}

export interface Metadata {
  rows: number;
  files: MetadataFileInfo[];
  /** Columns of the files (union, first file's order first). */
  columns: string[];
  /** The returned columns (the open options' `columns`, else all) and their types. */
  types: Record<string, ColumnType>;
  /** Rows of `ids` (in the order asked; undefined for ids past the end), with `columns` (default: the open options'). */
  get(ids: number[], columns?: string[]): Promise<(Record<string, unknown> | undefined)[]>;
  close(): Promise<void>;
}

export interface OpenMetadataOptions {
  /** Columns returned by default (clip back's columns_to_return). Default: all. */
  columns?: string[];
  /** Which files of a folder to read when it holds both kinds. Default: arrow if any .arrow file is there. */
  format?: MetadataFormat;
  /** Bytes of file data cached per open file. Default 8 MiB. */
  cacheBytes?: number;
  http?: HttpSourceOptions;
}

const OPEN_FILES = 16;
const FOOTER_PARALLEL = 8;

/** Metadata files of a local folder (recursively), of one format, sorted by path as clip back sorts them. */
export async function listMetadataFolder(
  folder: string,
  format?: MetadataFormat,
): Promise<{ files: string[]; format: MetadataFormat }> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true }).catch((err: unknown) => {
    throw inputNotFound(`cannot read the metadata folder ${folder}: ${(err as Error).message}`);
  });
  const paths = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  const arrow = paths.filter((p) => /\.(arrow|feather)$/i.test(p));
  const parquet = paths.filter((p) => /\.parquet$/i.test(p));
  const chosen = format ?? (arrow.length > 0 ? 'arrow' : 'parquet');
  const files = (chosen === 'arrow' ? arrow : parquet).sort(byPath(folder));
  if (files.length === 0) throw inputNotFound(`no ${chosen} files in the metadata folder ${folder}`);
  return { files, format: chosen };
}

/** Python's sorted() on path strings: code-point order of the full path. */
const byPath = (folder: string) => (a: string, b: string) => {
  const x = relative(folder, a);
  const y = relative(folder, b);
  return x < y ? -1 : x > y ? 1 : 0;
};

/** Opens metadata files (paths or URLs, already in id order) and reads their footers. */
export async function openMetadataFiles(
  names: string[],
  format: MetadataFormat,
  opts: OpenMetadataOptions = {},
): Promise<Metadata> {
  const pool = new SourcePool(opts);
  try {
    const footers = new Array<RowGroupFile>(names.length);
    const sizes = new Array<number>(names.length);
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const i = next++;
        const source = await pool.facade(names[i]!);
        sizes[i] = source.size;
        footers[i] = await pool.use(names[i]!, () =>
          format === 'arrow' ? openArrowFooter(source) : openParquetFooter(source),
        );
      }
    };
    await Promise.all(Array.from({ length: Math.min(FOOTER_PARALLEL, names.length) }, worker));
    return makeMetadata(names, format, footers, sizes, pool, opts);
  } catch (err) {
    await pool.close();
    throw err;
  }
}

export async function openMetadata(folder: string, opts: OpenMetadataOptions = {}): Promise<Metadata> {
  const { files, format } = await listMetadataFolder(folder, opts.format);
  return openMetadataFiles(files, format, opts);
}

function makeMetadata(
  names: string[],
  format: MetadataFormat,
  footers: RowGroupFile[],
  sizes: number[],
  pool: SourcePool,
  opts: OpenMetadataOptions,
): Metadata {
  const files: MetadataFileInfo[] = [];
  let rows = 0;
  for (let i = 0; i < names.length; i++) {
    const n = footers[i]!.groups.reduce((a, b) => a + b, 0);
    files.push({ name: names[i]!, format, start: rows, rows: n, bytes: sizes[i]! });
    rows += n;
  }
  const columns = [...new Set(footers.flatMap((f) => f.columns))];
  const pick = (wanted: string[] | undefined) => {
    const chosen = wanted ?? columns;
    const unknown = chosen.filter((c) => !columns.includes(c));
    if (unknown.length > 0)
      throw missingColumn(
        `no column ${unknown.map((c) => JSON.stringify(c)).join(', ')} in the metadata (${names[0]}, …); it has ${columns.join(', ')}`,
      );
    return chosen;
  };
  const defaultColumns = pick(opts.columns);
  const types = Object.fromEntries(
    defaultColumns.map((c) => [c, footers.find((f) => c in f.types)?.types[c] ?? 'string'] as const),
  );
  return {
    rows,
    files,
    columns,
    types,
    async get(ids, wanted) {
      const cols = wanted ? pick(wanted) : defaultColumns;
      const out = new Array<Record<string, unknown> | undefined>(ids.length);
      // Group the ids by (file, group): each group is read once, over the span its ids need.
      const byGroup = new Map<string, { file: number; group: number; rows: number[]; at: number[] }>();
      ids.forEach((id, at) => {
        if (!Number.isSafeInteger(id) || id < 0)
          throw invalidOption(`Expected metadata row ids ≥ 0 but received ${id}`);
        if (id >= rows) return;
        const file = lastAtOrBefore(files, id);
        const footer = footers[file]!;
        let row = id - files[file]!.start;
        let group = 0;
        while (row >= footer.groups[group]!) row -= footer.groups[group++]!;
        const key = `${file}:${group}`;
        const entry = byGroup.get(key) ?? { file, group, rows: [], at: [] };
        entry.rows.push(row);
        entry.at.push(at);
        byGroup.set(key, entry);
      });
      for (const { file, group, rows: wantedRows, at } of byGroup.values()) {
        const from = Math.min(...wantedRows);
        const to = Math.max(...wantedRows) + 1;
        const got = await pool.use(names[file]!, () =>
          footers[file]!.readGroupRows(
            group,
            from,
            to,
            cols.filter((c) => footers[file]!.columns.includes(c)),
          ),
        );
        wantedRows.forEach((r, i) => {
          const row = got[r - from]!;
          for (const c of cols) if (!(c in row)) row[c] = null;
          out[at[i]!] = { ...row };
        });
      }
      return out;
    },
    close: () => pool.close(),
  };
}

function lastAtOrBefore(files: MetadataFileInfo[], id: number): number {
  let lo = 0;
  let hi = files.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (files[mid]!.start <= id) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Open files, least recently used closed past OPEN_FILES; a file in use is not closed under its reader. */
class SourcePool {
  private readonly open = new Map<string, Promise<ByteSource>>();
  private readonly busy = new Map<string, number>();

  constructor(private readonly opts: OpenMetadataOptions) {}

  get(name: string): Promise<ByteSource> {
    let source = this.open.get(name);
    if (source) this.open.delete(name);
    source ??= openByteSource(name, { http: this.opts.http }).then(({ source: raw }) =>
      withBlockCache(raw, { maxBytes: this.opts.cacheBytes ?? 8 * 1024 * 1024 }),
    );
    this.open.set(name, source);
    source.catch(() => this.open.delete(name));
    this.evict();
    return source;
  }

  /** A ByteSource for `name` that survives eviction: each read goes through the pool (reopening the file if needed). */
  async facade(name: string): Promise<ByteSource> {
    const { size } = await this.get(name);
    return {
      name,
      size,
      readInto: async (offset, into) => (await this.get(name)).readInto(offset, into),
      close: async () => {},
    };
  }

  /** Runs `fn` with `name` kept open. */
  async use<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.busy.set(name, (this.busy.get(name) ?? 0) + 1);
    try {
      await this.get(name);
      return await fn();
    } finally {
      this.busy.set(name, this.busy.get(name)! - 1);
    }
  }

  private evict(): void {
    for (const [name, source] of this.open) {
      if (this.open.size <= OPEN_FILES) break;
      if ((this.busy.get(name) ?? 0) > 0) continue;
      this.open.delete(name);
      void source.then((s) => s.close()).catch(() => {});
    }
  }

  async close(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((p) => p.then((s) => s.close()).catch(() => {})));
  }
}
