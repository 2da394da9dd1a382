import { inferColumnTypeOf, type ParquetColumn, type ParquetColumnType } from '../io/parquet-write.js';

/**
 * The one list of a sample's fields, in img2dataset's order (downloader.py builds `meta` as: the input columns —
 * additional columns, caption, url — then key, status, error_message, width, height, original_width,
 * original_height, exif, the hash). Download records (download/columns.ts) and streamed samples (below) take their
 * json fields and parquet columns from here; the manifest takes its fields from a streamed sample's json.
 */
export const OUTCOME_COLUMNS: readonly ParquetColumn[] = [
  { name: 'key', type: 'STRING' },
  { name: 'status', type: 'STRING' },
  { name: 'error_message', type: 'STRING' },
  { name: 'width', type: 'INT32' },
  { name: 'height', type: 'INT32' },
  { name: 'original_width', type: 'INT32' },
  { name: 'original_height', type: 'INT32' },
];

/** What a streamed sample's fields are made of. */
export interface StreamedSampleParts {
  key: string;
  url: string;
  caption: string | null;
  /** The index row's other metadata columns (they come first, as img2dataset's input columns do). */
  metadata: Record<string, unknown>;
  width: number;
  height: number;
  originalWidth: number;
  originalHeight: number;
  sha256: string | null;
  id: number;
  query: string;
  similarity: number;
  partition: number;
  epoch: number;
  repeat: boolean;
}

interface Field {
  name: string;
  type: ParquetColumnType;
  of(p: StreamedSampleParts): unknown;
}

/** OUTCOME_COLUMNS' values for a delivered sample. */
const OUTCOME: Record<string, (p: StreamedSampleParts) => unknown> = {
  key: (p) => p.key,
  status: () => 'success',
  error_message: () => null,
  width: (p) => p.width,
  height: (p) => p.height,
  original_width: (p) => p.originalWidth,
  original_height: (p) => p.originalHeight,
};

const FIELDS: readonly Field[] = [
  { name: 'caption', type: 'STRING', of: (p) => p.caption },
  { name: 'url', type: 'STRING', of: (p) => p.url },
  ...OUTCOME_COLUMNS.map((c) => ({ ...c, of: OUTCOME[c.name]! })),
  { name: 'sha256', type: 'STRING', of: (p) => p.sha256 },
  // ours: which index row, for which query, where in the run
  { name: 'id', type: 'INT64', of: (p) => p.id },
  { name: 'query', type: 'STRING', of: (p) => p.query },
  { name: 'similarity', type: 'DOUBLE', of: (p) => p.similarity },
  { name: 'partition', type: 'INT64', of: (p) => p.partition },
  { name: 'epoch', type: 'INT64', of: (p) => p.epoch },
  { name: 'repeat', type: 'BOOLEAN', of: (p) => p.repeat },
];

const FIELD_NAMES = new Set(FIELDS.map((f) => f.name));

/** A streamed sample's json: the index metadata columns (those not named like a field), then FIELDS in order. */
export function streamedSampleJson(p: StreamedSampleParts): Record<string, unknown> {
  const json: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(p.metadata)) if (!FIELD_NAMES.has(name)) json[name] = value;
  for (const f of FIELDS) json[f.name] = f.of(p);
  return json;
}

/** The parquet columns of streamed samples, in the json's order; metadata columns typed from `rows`' values. */
export function streamedSampleColumns(rows: readonly { metadata: Record<string, unknown> }[]): ParquetColumn[] {
  const names = [...new Set(rows.flatMap((r) => Object.keys(r.metadata)))].filter((n) => !FIELD_NAMES.has(n));
  const metadata = names.map((name) => ({ name, type: inferColumnTypeOf(rows.map((r) => r.metadata[name])) }));
  return [...metadata, ...FIELDS.map(({ name, type }) => ({ name, type }))];
}

/** A manifest line (manifest.jsonl): these fields of the sample json, and the time it was delivered. */
export const MANIFEST_FIELDS = ['key', 'id', 'url', 'query', 'similarity', 'sha256', 'repeat'] as const;

export function manifestLine(json: Record<string, unknown>, time: Date): string {
  return JSON.stringify({ ...Object.fromEntries(MANIFEST_FIELDS.map((k) => [k, json[k]])), time: time.toISOString() });
}
