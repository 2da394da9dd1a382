/**
 * clip-retrieval "embedding folders": `img_emb/img_emb_{P}.npy`, optional `text_emb/text_emb_{P}.npy`,
 * `metadata/metadata_{P}.parquet`. Row r of the P files is one sample.
 *
 * Order and ids: partitions are taken in **lexicographic order of their file names** (plain code-unit comparison,
 * what Python's `sorted()` gives for these ASCII names), and a global id is the row offset over partitions in that
 * order — the order autofaiss and embedding-reader use (`glob` + `sort`), so ids match a faiss index built from
 * the same folder. clip-retrieval zero-pads P since 2.24.0, so lexicographic = numeric there; an older unpadded
 * folder (`img_emb_0 … img_emb_10`) reads as 0, 1, 10, 2, …, which `numericOrderDiffers` reports.
 *
 * Opening validates the whole folder up front from headers and parquet footers only (no data read): every npy has
 * its parquet partner (and text npy when `text_emb/` exists) with the same row count, all arrays are 2-D with one
 * dim. Misalignment → EMBEDDINGS_MISALIGNED naming both files and both counts.
 *
 * Memory while reading: vectors are bounded by `batchRows`; metadata is decoded one parquet row group at a time
 * and held (as row arrays) until the batches leave that group. hyparquet reads whole column chunks, so reading
 * per batch inside a large row group (clip-retrieval writes one group of up to 10^6 rows) would re-read and
 * re-decode the chunk for every batch; holding the group makes the metadata pass linear.
 */
import { readdir, stat } from 'node:fs/promises';
import { isS3Url, joinAt, s3List } from './s3.js';
import { defineError, inputMalformed, inputNotFound, invalidOption, npyMalformed } from '../core/errors.js';
import { openNpy, type NpyDtype, type NpyFile } from './npy.js';
import { formatShape } from './npy-header.js';
import { columnKinds, type ColumnKind } from './parquet-kinds.js';
import { openParquet } from './parquet-read.js';

const embeddingsMisaligned = defineError('EMBEDDINGS_MISALIGNED');

export interface EmbeddingPartition {
  /** The partition id P, as in the file names: `'0'` for `img_emb_0.npy`, `'07'` for `img_emb_07.npy`. */
  name: string;
  npyPath: string;
  textNpyPath?: string;
  metadataPath: string;
  rows: number;
  /** Global id of row 0: the rows of all partitions before it in lexicographic order. */
  firstId: number;
  dtype: NpyDtype;
  /** Its metadata columns and the kind of values each holds, from the parquet footer. */
  metadataKinds: Record<string, ColumnKind>;
}

export interface EmbeddingFolder {
  root: string;
  dim: number;
  /** The image embeddings' dtype; `'float32'` when partitions mix float16 and float32 (all are read as float32). */
  dtype: NpyDtype;
  /** Total rows. */
  count: number;
  /** In id order (lexicographic by file name). */
  partitions: EmbeddingPartition[];
  /** Union of the parquet columns, in order of first appearance; a partition lacking one reads it as null. */
  metadataColumns: string[];
  /** Whether `text_emb/` is present (then every partition has its text npy). */
  hasText: boolean;
  /** True when P are integers without zero-padding, so id order (lexicographic) differs from numeric order. */
  numericOrderDiffers: boolean;
}

const LAYOUT =
  "expected clip-retrieval's layout: img_emb/img_emb_{P}.npy + metadata/metadata_{P}.parquet (+ optional text_emb/text_emb_{P}.npy)";
/** Files opened at once while validating a folder. */
const OPEN_PARALLEL = 16;
/** Problems listed in one error message. */
const MAX_LISTED = 8;

/** Lexicographic by UTF-16 code unit: for these ASCII names, what Python's sorted() (and autofaiss) gives. */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function listPartitions(dir: string, prefix: string, ext: string): Promise<Map<string, string> | null> {
  let names: string[];
  try {
    names = isS3Url(dir) ? await s3List(dir) : await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  if (isS3Url(dir) && names.length === 0) return null; // a prefix without objects: no such folder
  const found = new Map<string, string>();
  const pattern = new RegExp(`^${prefix}_(.+)\\${ext}$`);
  for (const name of names) {
    if (!name.endsWith(ext)) continue;
    const match = pattern.exec(name);
    if (!match) {
      throw inputMalformed(`unexpected file ${joinAt(dir, name)}: ${LAYOUT}`, {
        hint: `Only ${prefix}_{P}${ext} files may sit in ${prefix}/ — another ${ext} would shift every global id in tools that glob the folder.`,
      });
    }
    found.set(match[1]!, name);
  }
  return found;
}

/** Every file without its partner of the same P: img_emb ↔ metadata (↔ text_emb when the folder has text). */
function unpartnered(
  images: Map<string, string>,
  metadata: Map<string, string>,
  texts: Map<string, string> | null,
): string[] {
  const problems: string[] = [];
  for (const [p, file] of images) {
    if (!metadata.has(p)) problems.push(`img_emb/${file} has no partner metadata/metadata_${p}.parquet`);
    if (texts && !texts.has(p)) problems.push(`img_emb/${file} has no partner text_emb/text_emb_${p}.npy`);
  }
  for (const [p, file] of metadata)
    if (!images.has(p)) problems.push(`metadata/${file} has no partner img_emb/img_emb_${p}.npy`);
  for (const [p, file] of texts ?? [])
    if (!images.has(p)) problems.push(`text_emb/${file} has no partner img_emb/img_emb_${p}.npy`);
  return problems;
}

async function requireFolder(root: string): Promise<void> {
  if (isS3Url(root)) {
    if ((await s3List(root)).length === 0) throw inputNotFound(`no embedding folder at ${root}: ${LAYOUT}`);
    return;
  }
  try {
    if (!(await stat(root)).isDirectory())
      throw inputMalformed(`expected an embedding folder but ${root} is a file: ${LAYOUT}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw inputNotFound(`no embedding folder at ${root}: ${LAYOUT}`);
    throw err;
  }
}

/** Opens and validates an embedding folder. Reads only npy headers and parquet footers. */
export async function openEmbeddingFolder(root: string): Promise<EmbeddingFolder> {
  await requireFolder(root);
  const images = await listPartitions(joinAt(root, 'img_emb'), 'img_emb', '.npy');
  if (!images)
    throw inputNotFound(`no img_emb/ folder in ${root}: ${LAYOUT}`, {
      hint: 'Make one with `clipstream inference --input SHARDS --output-folder DIR --model MODEL` (or clip-retrieval inference with enable_image=True), or point at such a folder.',
    });
  if (images.size === 0) throw inputNotFound(`img_emb/ in ${root} holds no img_emb_{P}.npy files: ${LAYOUT}`);
  const metadata = await listPartitions(joinAt(root, 'metadata'), 'metadata', '.parquet');
  if (!metadata)
    throw inputNotFound(
      `no metadata/ folder in ${root}: every img_emb/img_emb_{P}.npy needs metadata/metadata_{P}.parquet`,
    );
  const texts = await listPartitions(joinAt(root, 'text_emb'), 'text_emb', '.npy');
  const hasText = texts !== null && texts.size > 0;

  const problems = unpartnered(images, metadata, hasText ? texts : null);
  throwProblems(root, problems);

  const order = [...images.keys()].sort((a, b) => byName(images.get(a)!, images.get(b)!));
  interface Checked {
    p: string;
    rows: number;
    dim: number;
    dtype: NpyDtype;
    columns: string[];
    kinds: Record<string, ColumnKind>;
  }
  const checked = await mapBounded(order, OPEN_PARALLEL, async (p): Promise<Checked> => {
    const imageFile = images.get(p)!;
    const npyPath = joinAt(root, 'img_emb', imageFile);
    const image = await readNpyShape(npyPath);
    const metaFile = metadata.get(p)!;
    const meta = await readParquetFooter(joinAt(root, 'metadata', metaFile));
    if (meta.numRows !== image.rows) {
      problems.push(`img_emb/${imageFile} has ${image.rows} rows but metadata/${metaFile} has ${meta.numRows}`);
    }
    if (hasText) {
      const textFile = texts.get(p)!;
      const text = await readNpyShape(joinAt(root, 'text_emb', textFile));
      if (text.rows !== image.rows)
        problems.push(`img_emb/${imageFile} has ${image.rows} rows but text_emb/${textFile} has ${text.rows}`);
      if (text.dim !== image.dim)
        problems.push(`img_emb/${imageFile} has dim ${image.dim} but text_emb/${textFile} has dim ${text.dim}`);
    }
    return { p, rows: image.rows, dim: image.dim, dtype: image.dtype, columns: meta.columns, kinds: meta.kinds };
  });
  const first = checked[0]!;
  for (const c of checked) {
    if (c.dim !== first.dim) {
      problems.push(
        `img_emb/${images.get(c.p)} has dim ${c.dim} but img_emb/${images.get(first.p)} has dim ${first.dim}`,
      );
    }
  }
  throwProblems(root, problems);

  const partitions: EmbeddingPartition[] = [];
  const columns = new Set<string>();
  let firstId = 0;
  for (const c of checked) {
    const partition: EmbeddingPartition = {
      name: c.p,
      npyPath: joinAt(root, 'img_emb', images.get(c.p)!),
      metadataPath: joinAt(root, 'metadata', metadata.get(c.p)!),
      rows: c.rows,
      firstId,
      dtype: c.dtype,
      metadataKinds: c.kinds,
    };
    if (hasText) partition.textNpyPath = joinAt(root, 'text_emb', texts.get(c.p)!);
    partitions.push(partition);
    firstId += c.rows;
    for (const column of c.columns) columns.add(column);
  }
  const names = partitions.map((p) => p.name);
  const numericOrderDiffers =
    names.every((n) => /^\d+$/.test(n)) && names.some((n, i) => i > 0 && Number(n) < Number(names[i - 1]));
  return {
    root,
    dim: first.dim,
    dtype: checked.every((c) => c.dtype === first.dtype) ? first.dtype : 'float32',
    count: firstId,
    partitions,
    metadataColumns: [...columns],
    hasText,
    numericOrderDiffers,
  };
}

function throwProblems(root: string, problems: string[]): void {
  if (problems.length === 0) return;
  problems.sort(byName);
  const listed = problems.slice(0, MAX_LISTED).join('; ');
  const more = problems.length > MAX_LISTED ? `; and ${problems.length - MAX_LISTED} more` : '';
  throw embeddingsMisaligned(
    `${problems.length === 1 ? 'misaligned embedding folder' : `${problems.length} problems in embedding folder`} ${root}: ${listed}${more}`,
    {
      hint: 'Row r of img_emb_{P}.npy, text_emb_{P}.npy and metadata_{P}.parquet must be the same sample; regenerate or remove the partial partition.',
    },
  );
}

async function readNpyShape(path: string): Promise<{ rows: number; dim: number; dtype: NpyDtype }> {
  const npy = await openNpy(path);
  await npy.close();
  const { shape, dtype } = npy.header;
  if (shape.length !== 2) {
    throw npyMalformed(`expected a 2-D [n, d] embedding array in ${path} but found shape ${formatShape(shape)}`, {
      hint: 'Save embeddings as one row per sample: numpy.save(path, arr.reshape(len(arr), -1)).',
    });
  }
  return { rows: shape[0]!, dim: shape[1]!, dtype };
}

/** Runs `fn` over `items` with at most `limit` at once; results in input order. */
async function mapBounded<A, B>(items: readonly A[], limit: number, fn: (item: A) => Promise<B>): Promise<B[]> {
  const out = new Array<B>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Metadata parquet access: footer, and one row group at a time.

interface MetadataParquet {
  path: string;
  numRows: number;
  columns: string[];
  kinds: Record<string, ColumnKind>;
  /** Rows [start, end) as objects with the given columns (absent ones null). */
  rows(start: number, end: number, columns: readonly string[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

/**
 * The metadata parquet of one partition, on the shared reader (`openParquet`), with ONE decoded row group kept:
 * hyparquet reads whole column chunks, so re-reading a group per batch would decode a 1M-row group ~100 times.
 */
async function openMetadataParquet(path: string): Promise<MetadataParquet> {
  const parquet = await openParquet(path);
  let cached: { index: number; rows: Record<string, unknown>[] } | undefined;
  const group = async (index: number): Promise<Record<string, unknown>[]> => {
    if (cached?.index === index) return cached.rows;
    cached = undefined; // let the previous group go before decoding the next
    const { start, rows } = parquet.rowGroups[index]!;
    const decoded = await parquet.readRows(parquet.columns, start, start + rows);
    cached = { index, rows: decoded };
    return decoded;
  };
  return {
    path,
    numRows: parquet.numRows,
    columns: parquet.columns,
    kinds: Object.fromEntries(columnKinds(parquet.metadata)),
    async rows(start, end, wanted) {
      const out: Record<string, unknown>[] = [];
      for (let g = 0; g < parquet.rowGroups.length && out.length < end - start; g++) {
        const { start: gs, rows: n } = parquet.rowGroups[g]!;
        const ge = gs + n;
        if (ge <= start || gs >= end || n === 0) continue;
        const rows = await group(g);
        for (let r = Math.max(start, gs); r < Math.min(end, ge); r++) {
          const row = rows[r - gs]!;
          out.push(Object.fromEntries(wanted.map((name) => [name, row[name] ?? null])));
        }
      }
      return out;
    },
    close: () => parquet.close(),
  };
}

async function readParquetFooter(
  path: string,
): Promise<{ numRows: number; columns: string[]; kinds: Record<string, ColumnKind> }> {
  const parquet = await openMetadataParquet(path);
  await parquet.close();
  return { numRows: parquet.numRows, columns: parquet.columns, kinds: parquet.kinds };
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

export interface EmbeddingBatchOptions {
  /** Most rows per batch. A batch never spans two partitions. */
  batchRows: number;
  /** Only these partitions (by `name`), still in id order. Default: all. */
  partitions?: string[];
  /** Read text embeddings too when the folder has them. Default true. */
  text?: boolean;
  /** Metadata columns to return. Default: all of `metadataColumns`. */
  columns?: string[];
}

export interface EmbeddingBatch {
  partition: string;
  /** Global ids of the rows, consecutive: `ids[i] = firstId + rowStart + i`. */
  ids: number[];
  /** Row-major, `ids.length * dim` values, float32 (float16 converted). */
  vectors: Float32Array;
  textVectors?: Float32Array;
  /** One object per row, aligned with `ids`. Values as hyparquet decodes them (INT64 → bigint). */
  metadata: Record<string, unknown>[];
}

/** Streams a folder as batches of at most `batchRows` rows, in id order; vectors, text vectors and metadata aligned. */
export async function* readEmbeddingBatches(
  folder: EmbeddingFolder,
  opts: EmbeddingBatchOptions,
): AsyncGenerator<EmbeddingBatch> {
  const { batchRows } = opts;
  if (!Number.isSafeInteger(batchRows) || batchRows < 1) {
    throw invalidOption(`Expected a positive integer for batchRows but received ${batchRows}`);
  }
  let selected = folder.partitions;
  if (opts.partitions) {
    const known = new Set(folder.partitions.map((p) => p.name));
    const unknown = opts.partitions.filter((p) => !known.has(p));
    if (unknown.length > 0) {
      throw invalidOption(
        `Expected partitions of ${folder.root} (${[...known].slice(0, 10).join(', ')}${known.size > 10 ? ', …' : ''}) but received ${unknown.join(', ')}`,
      );
    }
    const wanted = new Set(opts.partitions);
    selected = folder.partitions.filter((p) => wanted.has(p.name));
  }
  const columns = opts.columns ?? folder.metadataColumns;
  const withText = (opts.text ?? true) && folder.hasText;

  for (const partition of selected) {
    if (partition.rows === 0) continue;
    const opened: { close(): Promise<void> }[] = [];
    try {
      const image = await openNpy(partition.npyPath);
      opened.push(image);
      let text: NpyFile | undefined;
      if (withText && partition.textNpyPath) {
        text = await openNpy(partition.textNpyPath);
        opened.push(text);
      }
      const meta = await openMetadataParquet(partition.metadataPath);
      opened.push(meta);
      // The folder was validated at open; a file replaced since then must not yield misaligned rows.
      for (const [what, rows] of [
        [partition.npyPath, image.header.rowCount],
        [partition.textNpyPath, text?.header.rowCount],
        [partition.metadataPath, meta.numRows],
      ] as const) {
        if (rows !== undefined && rows !== partition.rows) {
          throw embeddingsMisaligned(
            `${what} changed since the folder was opened: it has ${rows} rows, expected ${partition.rows}`,
          );
        }
      }
      for (let start = 0; start < partition.rows; start += batchRows) {
        const end = Math.min(start + batchRows, partition.rows);
        const [vectors, textVectors, metadata] = await Promise.all([
          image.readRows(start, end),
          text?.readRows(start, end),
          meta.rows(start, end, columns),
        ]);
        const ids = Array.from({ length: end - start }, (_, i) => partition.firstId + start + i);
        const batch: EmbeddingBatch = { partition: partition.name, ids, vectors, metadata };
        if (textVectors) batch.textVectors = textVectors;
        yield batch;
      }
    } finally {
      await Promise.all(opened.map((f) => f.close().catch(() => {})));
    }
  }
}
