import { relative } from 'node:path';
import { inputMalformed } from '../core/errors.js';
import type { EmbeddingFolder, EmbeddingPartition } from '../io/embedding-folder.js';
import { jsonReplacer, MAX_JSON_DEPTH, nestedDeeperThan } from '../io/json-value.js';
import type { ValueKind } from '../io/parquet-kinds.js';
import type { ColumnType } from './info.js';

/** Names the table uses for its own columns: a metadata column of that name is not imported. */
const RESERVED = new Set(['id', 'vector', 'text_vector']);

/** How each kind of parquet value is stored: nested values, dates and bytes as text (JSON, ISO 8601, base64). */
// integers stay integers: img2dataset writes width/height as INT32, LAION's parquet has INT64 and INT32 columns
const STORED_AS: Record<ValueKind, ColumnType> = {
  string: 'string',
  number: 'float64',
  integer: 'int64',
  bigint: 'int64',
  boolean: 'bool',
  object: 'string',
};

/** The type an index stores a parquet column of this kind as. */
export const storedTypeOf = (kind: ValueKind): ColumnType => STORED_AS[kind];

const MIXED_HINT =
  'Write that column with one type in every metadata parquet (e.g. df["width"] = df["width"].astype("int64")) and rerun; nothing was written.';

export interface ResolvedColumns {
  /** Column name → stored type, in the order of the folder's columns (or the index's, when extending it). */
  columns: Record<string, ColumnType>;
  /** Conversions made on the way, for the user: integer columns stored as float64, columns left out. */
  notes: string[];
}

interface Seen {
  type: ColumnType;
  /** Where the type comes from, for messages: `INT64 in metadata/metadata_0.parquet`. */
  from: string;
}

/**
 * One type per index column, from the parquet footers of the partitions to import, decided before anything is
 * written. Integers with floats are stored as float64 (exact up to 2^53; an integer float64 cannot hold is refused
 * when read) and said so; any other mix (width as text in one partition and a number in another) is refused naming both files,
 * the column and both types: storing the odd values as null lost them silently. An index being extended keeps its
 * columns' types, which the new partitions must fit.
 */
export function resolveColumns(
  folder: EmbeddingFolder,
  todo: EmbeddingPartition[],
  existing?: Record<string, ColumnType>,
): ResolvedColumns {
  const where = (p: EmbeddingPartition) => relative(folder.root, p.metadataPath);
  const notes: string[] = [];
  const seen = new Map<string, Seen>();
  for (const [name, type] of Object.entries(existing ?? {})) seen.set(name, { type, from: `${type} in the index` });
  const leftOut = new Set<string>();
  const widenedColumns = new Set<string>();
  for (const p of todo) {
    for (const [name, kind] of Object.entries(p.metadataKinds)) {
      if (RESERVED.has(name)) continue;
      const type = STORED_AS[kind.kind];
      const here = `${kind.declared} in ${where(p)}`;
      const first = seen.get(name);
      if (first === undefined) {
        if (existing === undefined) seen.set(name, { type, from: here });
        else if (!leftOut.has(name)) {
          leftOut.add(name);
          notes.push(
            `column "${name}" (${here}) is not in the index built before: left out (build a new index to keep it)`,
          );
        }
        continue;
      }
      if (type === first.type) continue;
      const widened =
        first.type === 'float64' && type === 'int64'
          ? 'float64'
          : first.type === 'int64' && type === 'float64' && !existing
            ? 'float64'
            : null;
      if (widened === null) {
        throw inputMalformed(
          `column "${name}" is ${here} (stored as ${type}) but ${first.from}${existing ? '' : ` (stored as ${first.type})`}: an index column has one type`,
          { hint: MIXED_HINT },
        );
      }
      if (!widenedColumns.has(name)) {
        widenedColumns.add(name);
        notes.push(
          `column "${name}" is ${here} but ${first.from}: stored as float64 (exact for every integer up to 2^53; one float64 cannot hold is refused)`,
        );
      }
      seen.set(name, { type: widened, from: first.from });
    }
  }
  const order = existing ? Object.keys(existing) : folder.metadataColumns.filter((c) => seen.has(c));
  return { columns: Object.fromEntries(order.map((name) => [name, seen.get(name)!.type])), notes };
}

/**
 * A metadata value as its column stores it; a value that does not fit is refused with `at()` (file and row) rather
 * than stored as null. The footers were checked by resolveColumns, so this only fires on a file that lies.
 */
export function cellOf(value: unknown, column: string, type: ColumnType, at: () => string): unknown {
  if (value === null || value === undefined) return null;
  const refuse = (why: string) =>
    inputMalformed(`${at()}: column "${column}" holds ${describe(value)}, ${why}`, { hint: MIXED_HINT });
  switch (type) {
    case 'int64':
      if (typeof value === 'bigint') return value;
      if (Number.isSafeInteger(value)) return BigInt(value as number);
      throw refuse('but the index stores it as int64');
    case 'float64':
      if (typeof value === 'number') return value;
      if (typeof value === 'bigint' && BigInt(Number(value)) === value) return Number(value);
      throw refuse(
        typeof value === 'bigint' ? 'an integer float64 cannot hold exactly' : 'but the index stores it as float64',
      );
    case 'bool':
      if (typeof value === 'boolean') return value;
      throw refuse('but the index stores it as bool');
    case 'string':
      if (typeof value === 'string') return value;
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
      if (typeof value !== 'object') return String(value);
      if (nestedDeeperThan(value)) throw refuse(`nested deeper than ${MAX_JSON_DEPTH} levels`);
      return JSON.stringify(value, jsonReplacer);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string')
    return `${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)} (text)`;
  if (typeof value === 'bigint') return `${value} (an integer)`;
  if (typeof value === 'number') return `${value} (a number)`;
  if (typeof value === 'boolean') return `${value} (a boolean)`;
  return `a value of type ${Array.isArray(value) ? 'list' : typeof value}`;
}
