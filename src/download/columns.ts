import type { UrlRow } from '../core/types.js';
import type { HashAlgorithm } from '../image/index.js';
import { inferColumnTypeOf, type ParquetColumn, type ParquetColumnType } from '../io/parquet-write.js';
import { OUTCOME_COLUMNS } from '../sample/fields.js';
import type { DownloadOptions } from './options.js';

/**
 * The fields of a sample's json and of its shard parquet row, in img2dataset's order (downloader.py builds `meta`
 * as: the input columns as its reader selects them — additional columns, the bbox column, caption, url — then key,
 * status, error_message, width, height, original_width, original_height, exif, the hash), plus our `reason` last.
 */
export interface MetaLayout {
  /** Input columns copied into the meta, in img2dataset's order. A txt list has only `url`. */
  inputColumns: string[];
  extractExif: boolean;
  computeHash: HashAlgorithm | 'none';
  /**
   * img2dataset reads the verify-hash column under the hash's name, just before url: its parquet keeps the
   * (computed) hash there, while its json puts it last. Mirrored so both files match img2dataset's.
   */
  verifyHash: boolean;
}

export function metaLayout(o: DownloadOptions): MetaLayout {
  const text = o.inputFormat === 'txt' || o.inputFormat === 'txt.gz';
  const additional = [...new Set([...o.saveAdditionalColumns, ...(o.bboxCol === undefined ? [] : [o.bboxCol])])];
  const inputColumns = text ? ['url'] : [...additional, ...(o.captionCol === undefined ? [] : ['caption']), 'url'];
  return {
    inputColumns,
    extractExif: o.extractExif,
    computeHash: o.computeHash,
    verifyHash: o.verifyHash !== undefined,
  };
}

/** The sample json's field names, in order. */
export function metaFields(layout: MetaLayout): string[] {
  return metaColumnsOrdered(layout, () => 'STRING', false).map((c) => c.name);
}

/** The shard parquet's schema: additional columns typed from the shard's values, the rest fixed. */
export function metaColumns(layout: MetaLayout, rows: readonly UrlRow[]): ParquetColumn[] {
  return metaColumnsOrdered(layout, (name) => inferColumnTypeOf(rows.map((r) => r.columns[name])), layout.verifyHash);
}

function metaColumnsOrdered(
  layout: MetaLayout,
  typeOf: (name: string) => ParquetColumnType,
  hashBeforeUrl: boolean,
): ParquetColumn[] {
  const hash: ParquetColumn[] = layout.computeHash === 'none' ? [] : [{ name: layout.computeHash, type: 'STRING' }];
  const columns: ParquetColumn[] = [];
  for (const name of layout.inputColumns) {
    if (name === 'url' && hashBeforeUrl) columns.push(...hash);
    columns.push({ name, type: name === 'url' || name === 'caption' ? 'STRING' : typeOf(name) });
  }
  columns.push(...OUTCOME_COLUMNS);
  if (layout.extractExif) columns.push({ name: 'exif', type: 'STRING' });
  if (!hashBeforeUrl) columns.push(...hash);
  columns.push({ name: 'reason', type: 'STRING' });
  return columns;
}
