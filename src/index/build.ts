import { mkdir } from 'node:fs/promises';
import * as lancedb from '@lancedb/lancedb';
import { Bool, Field, FixedSizeList, Float32, Float64, Int64, Schema, Utf8, type DataType } from 'apache-arrow';
import { ClipstreamError } from '../core/errors.js';
import { openEmbeddingFolder, readEmbeddingBatches } from '../io/embedding-folder.js';
import { readIndexInfo, TABLE, writeIndexInfo, type ColumnType, type IndexInfo } from './info.js';
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
}

/**
 * Row count from which `auto` builds IVF-PQ. Measured with bench/index on the 2-core machine (512 dims, k=10):
 * flat p50 14.7 ms at 10 k rows, 24.1 ms at 30 k, 133 ms at 100 k; IVF-PQ at 100 k: 14–16 ms at recall@10 1.0.
 * Flat search stops paying for itself around 30 k rows.
 */
export const ANN_THRESHOLD = 30_000;

/** Rows per HNSW graph: one IVF partition each, all probed by default; bounds the memory of the build. */
const HNSW_PARTITION_ROWS = 250_000;

export type IndexType = 'auto' | 'flat' | 'ivf_pq' | 'ivf_hnsw_sq';

/**
 * Streams a clip-retrieval embedding folder into one LanceDB table (`id`, `vector`, `text_vector`, every metadata
 * column) with explicit global ids, then chooses exact, IVF-HNSW-SQ or IVF-PQ search and records the measured recall@10.
 * Rerunning on a folder with new partitions appends only those.
 */
export async function buildIndex(o: BuildIndexOptions): Promise<IndexInfo> {
  const folder = await openEmbeddingFolder(o.embeddings);
  const metric = o.metric ?? 'ip';
  const previous = await readIndexInfo(o.output);
  if (previous && (previous.dim !== folder.dim || previous.metric !== metric)) {
    throw new ClipstreamError(
      'INDEX_INVALID',
      `${o.output} holds ${previous.dim}-dimensional ${previous.metric} vectors; ${o.embeddings} has ${folder.dim} dimensions and ${metric} was asked`,
      { hint: 'Use another --output folder, or the same --metric.' },
    );
  }
  const done = new Set(previous?.partitions ?? []);
  const todo = folder.partitions.filter((p) => !done.has(p.name));
  await mkdir(o.output, { recursive: true });
  const db = await lancedb.connect(o.output);
  let table = previous ? await db.openTable(TABLE) : undefined;
  let columns = previous?.columns;
  let schema: Schema | undefined;
  let imported = previous?.count ?? 0;
  // Tables made before this field existed are not known to hold unit vectors.
  let unitNorm = previous ? previous.unit_norm === true : true;
  const total = imported + todo.reduce((n, p) => n + p.rows, 0);

  for await (const b of readEmbeddingBatches(folder, { batchRows: o.batchRows ?? 10_000, partitions: todo.map((p) => p.name) })) {
    columns ??= inferColumns(b.metadata, folder.metadataColumns);
    schema ??= tableSchema(folder.dim, folder.hasText, columns);
    const rows = b.metadata.map((meta, i) => {
      const vector = normalise(b.vectors.subarray(i * folder.dim, (i + 1) * folder.dim), metric);
      unitNorm &&= vector.unit;
      const row: Record<string, unknown> = { id: b.ids[i], vector: vector.values };
      if (folder.hasText && b.textVectors) row.text_vector = normalise(b.textVectors.subarray(i * folder.dim, (i + 1) * folder.dim), metric).values;
      for (const [name, type] of Object.entries(columns!)) row[name] = cell(meta[name], type);
      return row;
    });
    const data = lancedb.makeArrowTable(rows, { schema });
    if (table) await table.add(data);
    else table = await db.createTable(TABLE, data);
    imported += rows.length;
    o.onProgress?.(imported, total);
  }
  if (!table) throw new ClipstreamError('INDEX_INVALID', `${o.embeddings} has no rows to index`);

  const type = chooseIndexType(o.indexType ?? 'auto', imported);
  if (type === 'ivf_hnsw_sq' && !unitNorm) {
    throw new ClipstreamError('INDEX_INVALID', `${o.embeddings} holds vectors that are not unit length, and ivf_hnsw_sq ranks by cosine`, {
      hint: 'Use --metric cosine (vectors are normalised at import), or --index-type ivf_pq (ranks by dot product).',
    });
  }
  const ann = await buildAnn(table, type, imported, folder.dim);
  const recall = ann.type === 'flat' ? 1 : await measureRecall(table, ann, folder.dim);
  const now = new Date().toISOString();
  const info: IndexInfo = {
    format_version: 1,
    count: imported,
    dim: folder.dim,
    metric,
    model: o.model ?? previous?.model ?? null,
    columns: columns ?? {},
    has_text: folder.hasText,
    unit_norm: unitNorm,
    ann,
    recall_at_10: recall,
    partitions: [...done, ...todo.map((p) => p.name)],
    created_at: previous?.created_at ?? now,
    updated_at: now,
  };
  await writeIndexInfo(o.output, info);
  table.close();
  return info;
}

/**
 * `auto`: exact below ANN_THRESHOLD, else IVF-PQ. IVF-HNSW-SQ answers a k=10 query 5 × faster at better recall
 * (bench/index, 1 M × 512: p50 4.3 ms at recall@10 0.96 vs 22.5 ms at 0.93) but a process must load its whole
 * graph before the first search (1 M rows: 3.6 s and 1.3 GB RSS, where IVF-PQ reads only the probed partitions:
 * 1.2 s, 0.35 GB), and a threshold search for tens of thousands of rows walks the graph with ef = limit. The
 * streaming loader opens the index in a fresh process and asks for exactly such searches, so HNSW is opt-in: for a
 * long-running `clipstream serve` whose latency matters.
 */
export function chooseIndexType(asked: IndexType, rows: number): Exclude<IndexType, 'auto'> {
  if (asked !== 'auto') return asked;
  return rows < ANN_THRESHOLD ? 'flat' : 'ivf_pq';
}

async function buildAnn(table: lancedb.Table, type: Exclude<IndexType, 'auto'>, rows: number, dim: number): Promise<IndexInfo['ann']> {
  if (type === 'flat') return { type };
  if (type === 'ivf_hnsw_sq') {
    const numPartitions = Math.max(1, Math.ceil(rows / HNSW_PARTITION_ROWS));
    await table.createIndex('vector', { config: lancedb.Index.hnswSq({ numPartitions, distanceType: 'cosine' }), replace: true });
    return { type, num_partitions: numPartitions, nprobes: numPartitions, ef: 80 };
  }
  const numPartitions = Math.max(1, Math.round(Math.sqrt(rows)));
  const numSubVectors = dim % 16 === 0 ? dim / 16 : dim % 8 === 0 ? dim / 8 : 1;
  await table.createIndex('vector', { config: lancedb.Index.ivfPq({ numPartitions, numSubVectors, distanceType: 'dot' }), replace: true });
  return { type, num_partitions: numPartitions, num_sub_vectors: numSubVectors, nprobes: 20, refine_factor: 10 };
}

/** Column types from the first batch; later values that do not fit are stored as text (strings) or null. */
function inferColumns(rows: Record<string, unknown>[], names: string[]): Record<string, ColumnType> {
  const out: Record<string, ColumnType> = {};
  for (const name of names) {
    if (name === 'id' || name === 'vector' || name === 'text_vector') continue;
    const sample = rows.map((r) => r[name]).find((v) => v !== null && v !== undefined);
    out[name] = typeof sample === 'bigint' ? 'int64' : typeof sample === 'number' ? 'float64' : typeof sample === 'boolean' ? 'bool' : 'string';
  }
  return out;
}

function tableSchema(dim: number, hasText: boolean, columns: Record<string, ColumnType>): Schema {
  const vector = () => new FixedSizeList(dim, new Field('item', new Float32(), true));
  const arrow: Record<ColumnType, () => DataType> = { string: () => new Utf8(), float64: () => new Float64(), int64: () => new Int64(), bool: () => new Bool() };
  return new Schema([
    new Field('id', new Int64(), false),
    new Field('vector', vector(), false),
    ...(hasText ? [new Field('text_vector', vector(), true)] : []),
    ...Object.entries(columns).map(([name, type]) => new Field(name, arrow[type](), true)),
  ]);
}

function cell(value: unknown, type: ColumnType): unknown {
  if (value === null || value === undefined) return null;
  switch (type) {
    case 'int64':
      return typeof value === 'bigint' ? value : Number.isInteger(value) ? BigInt(value as number) : null;
    case 'float64':
      return typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : null;
    case 'bool':
      return typeof value === 'boolean' ? value : null;
    case 'string':
      return typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? Number(v) : v)) : String(value);
  }
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
