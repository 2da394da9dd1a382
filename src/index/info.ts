import { readFile, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { indexInvalid } from '../core/errors.js';

export type ColumnType = 'string' | 'float64' | 'int64' | 'bool';

/** `clipstream.json`: what an index folder holds and how it was built. */
export interface IndexInfo {
  format_version: 1;
  count: number;
  dim: number;
  metric: 'ip' | 'cosine';
  model: string | null;
  columns: Record<string, ColumnType>;
  has_text: boolean;
  /** Every image vector is unit length (IVF-HNSW-SQ needs it). Absent in indexes made before it was recorded. */
  unit_norm?: boolean;
  ann: { type: 'flat' } | IvfPq | IvfHnswSq;
  recall_at_10: number;
  partitions: string[];
  created_at: string;
  updated_at: string;
}

/** IVF partitions of PQ codes (32 bytes a row): for the largest tables. Searches re-rank `refine_factor` × k rows exactly. */
export interface IvfPq {
  type: 'ivf_pq';
  num_partitions: number;
  num_sub_vectors: number;
  nprobes: number;
  refine_factor: number;
}

/** A few IVF partitions, each an HNSW graph over 8-bit scalar-quantized vectors; results re-ranked exactly. */
export interface IvfHnswSq {
  type: 'ivf_hnsw_sq';
  num_partitions: number;
  nprobes: number;
  /** HNSW search breadth (at least k). */
  ef: number;
}

export const INFO_FILE = 'clipstream.json';
export const TABLE = 'samples';

export async function readIndexInfo(dir: string): Promise<IndexInfo | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, INFO_FILE), 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as IndexInfo;
  } catch (err) {
    throw indexInvalid(`${join(dir, INFO_FILE)} is not valid JSON`, { cause: err });
  }
}

export async function requireIndexInfo(dir: string): Promise<IndexInfo> {
  const info = await readIndexInfo(dir);
  if (!info) {
    throw indexInvalid(`${dir} is not a clipstream index (no ${INFO_FILE})`, {
      hint: 'Build one with: clipstream index --embeddings EMBEDDING_FOLDER --output DIR',
    });
  }
  return info;
}

export async function writeIndexInfo(dir: string, info: IndexInfo): Promise<void> {
  const path = join(dir, INFO_FILE);
  await writeFile(`${path}.partial`, JSON.stringify(info, null, 2) + '\n');
  await rename(`${path}.partial`, path);
}
