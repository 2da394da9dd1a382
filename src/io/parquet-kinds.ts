import { parquetSchema, type FileMetaData, type SchemaElement, type SchemaTree } from 'hyparquet';

/**
 * The JS values hyparquet gives for a column: what a reader can store it as. `integer`: numbers that are always
 * integers (INT32, its 8/16-bit and unsigned annotations); `bigint`: INT64; `object`: Date, bytes, nested, JSON.
 */
export type ValueKind = 'string' | 'number' | 'integer' | 'bigint' | 'boolean' | 'object';

export interface ColumnKind {
  kind: ValueKind;
  /** The column's parquet type as the file declares it, for messages: `INT64`, `BYTE_ARRAY (STRING)`, `LIST`. */
  declared: string;
}

/**
 * Top-level column name → the kind of values hyparquet decodes for it, from the footer alone. Follows hyparquet's
 * `convert()` (the order of its checks matters: DECIMAL before the physical type, a plain BYTE_ARRAY is text).
 */
export function columnKinds(metadata: FileMetaData): Map<string, ColumnKind> {
  const out = new Map<string, ColumnKind>();
  for (const child of parquetSchema(metadata).children)
    out.set(child.element.name, { kind: kindOf(child), declared: declaredType(child) });
  return out;
}

function kindOf(column: SchemaTree): ValueKind {
  const e = column.element;
  if (column.children.length > 0) return 'object';
  const converted = e.converted_type;
  const logical = e.logical_type?.type;
  if (converted === 'DECIMAL') return 'number';
  if (
    e.type === 'INT96' ||
    converted === 'DATE' ||
    converted === 'TIMESTAMP_MILLIS' ||
    converted === 'TIMESTAMP_MICROS'
  )
    return 'object';
  if (converted === 'JSON' || logical === 'GEOMETRY' || logical === 'GEOGRAPHY') return 'object';
  if (logical === 'UUID' || converted === 'UTF8' || logical === 'STRING' || e.type === 'BYTE_ARRAY') return 'string';
  if (logical === 'FLOAT16') return 'number';
  if (logical === 'TIMESTAMP') return 'object';
  switch (e.type) {
    case 'BOOLEAN':
      return 'boolean';
    case 'INT32':
      return 'integer';
    case 'FLOAT':
    case 'DOUBLE':
      return 'number';
    case 'INT64':
      return 'bigint';
    default:
      return 'object'; // FIXED_LEN_BYTE_ARRAY: bytes
  }
}

function declaredType(column: SchemaTree): string {
  const e: SchemaElement = column.element;
  const annotation = e.logical_type?.type ?? e.converted_type;
  if (column.children.length > 0) return annotation ?? 'group';
  return annotation ? `${e.type ?? '?'} (${annotation})` : (e.type ?? '?');
}
