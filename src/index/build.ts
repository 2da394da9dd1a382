import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import { Bool, Field, FixedSizeList, Float32, Float64, Int64, Schema, Utf8, type DataType } from 'apache-arrow';
import { indexInvalid } from '../core/errors.js';
import {
  openEmbeddingFolder,
  readEmbeddingBatches,
  type EmbeddingFolder,
  type EmbeddingPartition,
} from '../io/embedding-folder.js';
import { buildAnn, checkTrainable, chooseIndexType, type IndexType } from './ann-build.js';
import { cellOf, resolveColumns } from './columns.js';
import { INFO_FILE, readIndexInfo, TABLE, writeIndexInfo, type ColumnType, type IndexInfo } from './info.js';
import { measureRecall } from './recall.js';

export interface BuildIndexOptions {
  embeddings: string;
  output: string;
  metric?: 'ip' | 'cosine';
  indexType?: IndexType;
  /** Model that made the embeddings, recorded in clipstream.json when known. */
  model?: string;
  batchRows?: number;
  onProgress?: (done: number, total: number) => void;
  /** Told what was converted on the way (an integer column stored as float64, a column left out). */
  onNote?: (message: string) => void;
}

/** A new index is built in this folder inside its output, and its table renamed into place once complete. */
export const STAGING = '.building';

export { ANN_THRESHOLD, chooseIndexType, type IndexType } from './ann-build.js';

interface Job {
  o: BuildIndexOptions;
  folder: EmbeddingFolder;
  metric: 'ip' | 'cosine';
  todo: EmbeddingPartition[];
  columns: Record<string, ColumnType>;
  type: Exclude<IndexType, 'auto'>;
  total: number;
}

interface Built {
  count: number;
  unitNorm: boolean;
  ann: IndexInfo['ann'];
  recall: number;
}

/**
 * Streams a clip-retrieval embedding folder into one LanceDB table (`id`, `vector`, `text_vector`, every metadata
 * column) with explicit global ids, then chooses exact, IVF-HNSW-SQ or IVF-PQ search and records the measured
 * recall@10. Rerunning on a folder with new partitions appends only those.
 *
 * Nothing half-built blocks a rerun: a new index is built in `output/.building` and its table renamed into place
 * before `clipstream.json` is written; an index being extended is trimmed back to the rows its clipstream.json
 * counts when anything fails (and at the start, after a crash). Column types and vectors are checked on the way in:
 * mixed column types before anything is written, a NaN row where it is read.
 */
export async function buildIndex(o: BuildIndexOptions): Promise<IndexInfo> {
  const folder = await openEmbeddingFolder(o.embeddings);
  const metric = o.metric ?? 'ip';
  const previous = await readIndexInfo(o.output);
  if (previous) checkSameSpace(previous, folder, metric, o);
  const todo = previous ? newPartitions(previous, folder, o) : folder.partitions;
  const { columns, notes } = resolveColumns(folder, todo, previous?.columns);
  for (const note of notes) o.onNote?.(note);
  const total = (previous?.count ?? 0) + todo.reduce((n, p) => n + p.rows, 0);
  if (total === 0) throw indexInvalid(`${o.embeddings} has no rows to index`);
  const type = chooseIndexType(o.indexType ?? 'auto', total);
  checkTrainable(type, total, o.embeddings);
  const job: Job = { o, folder, metric, todo, columns, type, total };
  return previous ? extendIndex(job, previous) : createIndex(job);
}

/** A new index: built aside in STAGING, renamed into place when complete, clipstream.json last. */
async function createIndex(job: Job): Promise<IndexInfo> {
  const { output } = job.o;
  const final = join(output, `${TABLE}.lance`);
  if (await exists(final)) {
    throw indexInvalid(
      `${output} holds ${TABLE}.lance but no ${INFO_FILE}: a build stopped between its last two steps, or the folder is not a clipstream index`,
      {
        hint: `Remove ${final} and rerun, or pass another --output.`,
      },
    );
  }
  const staging = join(output, STAGING);
  await rm(staging, { recursive: true, force: true }); // what a killed build left
  await mkdir(staging, { recursive: true });
  const db = await lancedb.connect(staging);
  let table: lancedb.Table | undefined;
  try {
    const imported = await importRows(job, db, undefined, 0);
    table = imported.table;
    const built = await indexAndMeasure(job, table, imported.unit);
    table.close();
    table = undefined;
    const info = indexInfo(job, built, undefined);
    await rename(join(staging, `${TABLE}.lance`), final);
    await writeIndexInfo(output, info);
    return info;
  } finally {
    table?.close();
    db.close();
    await rm(staging, { recursive: true, force: true });
  }
}

/** An index gets the folder's new partitions; on any failure its table goes back to the rows clipstream.json counts. */
async function extendIndex(job: Job, previous: IndexInfo): Promise<IndexInfo> {
  const db = await lancedb.connect(job.o.output);
  const table = await db.openTable(TABLE).catch((err: unknown) => {
    db.close();
    throw indexInvalid(
      `${job.o.output} holds ${INFO_FILE} but no readable ${TABLE} table: ${(err as Error).message.split('\n')[0]}`,
      {
        hint: 'Build the index again into an empty --output.',
        cause: err,
      },
    );
  });
  try {
    await trimTo(table, previous.count); // rows a killed extension appended
    // Tables made before unit_norm was recorded are not known to hold unit vectors.
    const imported = await importRows(job, db, table, previous.count);
    const built = await indexAndMeasure(job, table, imported.unit && previous.unit_norm === true);
    const info = indexInfo(job, built, previous);
    await writeIndexInfo(job.o.output, info);
    return info;
  } catch (err) {
    await trimTo(table, previous.count).catch(() => {});
    throw err;
  } finally {
    table.close();
    db.close();
  }
}

/** Deletes rows past the first `count` ids: every appended row has an id ≥ count (see newPartitions). */
async function trimTo(table: lancedb.Table, count: number): Promise<void> {
  if ((await table.countRows()) > count) await table.delete(`id >= ${count}`);
}

function checkSameSpace(
  previous: IndexInfo,
  folder: EmbeddingFolder,
  metric: 'ip' | 'cosine',
  o: BuildIndexOptions,
): void {
  if (previous.has_text !== folder.hasText) {
    throw indexInvalid(
      `${o.output} was built ${previous.has_text ? 'with' : 'without'} text embeddings but ${o.embeddings} ${folder.hasText ? 'has' : 'has no'} text_emb/`,
      {
        hint: 'Extend an index with partitions of the same kind, or build a new one with another --output.',
      },
    );
  }
  if (previous.dim === folder.dim && previous.metric === metric) return;
  throw indexInvalid(
    `${o.output} holds ${previous.dim}-dimensional ${previous.metric} vectors; ${o.embeddings} has ${folder.dim} dimensions and ${metric} was asked`,
    { hint: 'Use another --output folder, or the same --metric.' },
  );
}

/**
 * The partitions an index does not hold yet. Ids are row offsets in the folder's order, so the indexed partitions
 * must still be its first ones, with the rows they had: a new partition sorting among them (`10` between `1` and
 * `2`) would give its rows the ids of indexed ones.
 */
function newPartitions(previous: IndexInfo, folder: EmbeddingFolder, o: BuildIndexOptions): EmbeddingPartition[] {
  const k = previous.partitions.length;
  const head = folder.partitions.slice(0, k);
  const done = new Set(previous.partitions);
  const rows = head.reduce((n, p) => n + p.rows, 0);
  if (head.length === k && head.every((p) => done.has(p.name)) && rows === previous.count)
    return folder.partitions.slice(k);
  const stray = folder.partitions.find((p, i) => i < k !== done.has(p.name));
  throw indexInvalid(
    `${o.output} holds partitions ${previous.partitions.join(', ')} (${previous.count} rows), which are no longer the first ${k} of ${o.embeddings}` +
      `${stray ? ` (partition ${stray.name} sorts among them)` : head.length === k ? ` (they have ${rows} rows now)` : ''}: the new rows' ids would collide with indexed ones`,
    {
      hint: 'Name new partitions so they sort after the indexed ones (zero-padded), or build a new index with another --output.',
    },
  );
}

/** Appends the job's partitions to `table` (or a new table in `db`); `unit`: every vector imported is unit length. */
async function importRows(
  job: Job,
  db: lancedb.Connection,
  existing: lancedb.Table | undefined,
  count: number,
): Promise<{ table: lancedb.Table; unit: boolean }> {
  const { o, folder, columns, metric } = job;
  const schema = tableSchema(folder.dim, folder.hasText, columns);
  const byName = new Map(folder.partitions.map((p) => [p.name, p]));
  let table = existing;
  let done = count;
  let unit = true;
  for await (const b of readEmbeddingBatches(folder, {
    batchRows: o.batchRows ?? 10_000,
    partitions: job.todo.map((p) => p.name),
  })) {
    const partition = byName.get(b.partition)!;
    const rows = b.metadata.map((meta, i) => {
      const vector = normalise(b.vectors.subarray(i * folder.dim, (i + 1) * folder.dim), metric);
      unit &&= vector.unit;
      const row: Record<string, unknown> = { id: b.ids[i], vector: vector.values };
      if (folder.hasText && b.textVectors)
        row.text_vector = normalise(b.textVectors.subarray(i * folder.dim, (i + 1) * folder.dim), metric).values;
      const at = () => `${partition.metadataPath} row ${b.ids[i]! - partition.firstId}`;
      for (const [name, type] of Object.entries(columns)) row[name] = cellOf(meta[name], name, type, at);
      return row;
    });
    const data = lancedb.makeArrowTable(rows, { schema });
    if (table) await table.add(data);
    else table = await db.createTable(TABLE, data);
    done += rows.length;
    o.onProgress?.(done, job.total);
  }
  if (!table) throw indexInvalid(`${o.embeddings} has no rows to index`);
  return { table, unit };
}

/** The ANN index over the whole table and its measured recall@10. */
async function indexAndMeasure(job: Job, table: lancedb.Table, unitNorm: boolean): Promise<Built> {
  const { folder, type } = job;
  const count = await table.countRows();
  if (type === 'ivf_hnsw_sq' && !unitNorm) {
    throw indexInvalid(`${job.o.embeddings} holds vectors that are not unit length, and ivf_hnsw_sq ranks by cosine`, {
      hint: 'Use --metric cosine (vectors are normalised at import), or --index-type ivf_pq (ranks by dot product).',
    });
  }
  const ann = await buildAnn(table, type, count, folder.dim);
  const recall = ann.type === 'flat' ? 1 : await measureRecall(table, ann, folder.dim);
  return { count, unitNorm, ann, recall };
}

function indexInfo(job: Job, built: Built, previous: IndexInfo | undefined): IndexInfo {
  const now = new Date().toISOString();
  return {
    format_version: 1,
    count: built.count,
    dim: job.folder.dim,
    metric: job.metric,
    model: job.o.model ?? previous?.model ?? null,
    columns: job.columns,
    has_text: job.folder.hasText,
    unit_norm: built.unitNorm,
    ann: built.ann,
    recall_at_10: built.recall,
    partitions: [...(previous?.partitions ?? []), ...job.todo.map((p) => p.name)],
    created_at: previous?.created_at ?? now,
    updated_at: now,
  };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function tableSchema(dim: number, hasText: boolean, columns: Record<string, ColumnType>): Schema {
  const vector = () => new FixedSizeList(dim, new Field('item', new Float32(), true));
  const arrow: Record<ColumnType, () => DataType> = {
    string: () => new Utf8(),
    float64: () => new Float64(),
    int64: () => new Int64(),
    bool: () => new Bool(),
  };
  return new Schema([
    new Field('id', new Int64(), false),
    new Field('vector', vector(), false),
    ...(hasText ? [new Field('text_vector', vector(), true)] : []),
    ...Object.entries(columns).map(([name, type]) => new Field(name, arrow[type](), true)),
  ]);
}

/** How far from 1 a norm may be and still count as a unit vector stored with float16 rounding. */
const UNIT_TOLERANCE = 0.01;

/**
 * clip-retrieval folders hold L2-normalised vectors, rounded to float16. `cosine` renormalises every vector; `ip`
 * renormalises those within UNIT_TOLERANCE of unit length (undoing the rounding, so that dot product and cosine
 * agree) and keeps the others as they are. `unit`: the vector stored has unit length.
 */
function normalise(v: Float32Array, metric: 'ip' | 'cosine'): { values: Float32Array; unit: boolean } {
  const values = Float32Array.from(v);
  let sum = 0;
  for (const x of values) sum += x * x;
  const norm = Math.sqrt(sum);
  if (norm === 0 || (metric === 'ip' && Math.abs(norm - 1) > UNIT_TOLERANCE)) return { values, unit: false };
  for (let i = 0; i < values.length; i++) values[i]! /= norm;
  return { values, unit: true };
}
