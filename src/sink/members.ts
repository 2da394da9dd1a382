import { internalError } from '../core/errors.js';
import type { SampleRecord } from '../core/types.js';
import { jsonReplacer } from '../io/json-value.js';

/** One file of a sample: a tar member or a file in a shard folder. */
export interface SampleMember {
  name: string;
  data: Buffer;
}

/**
 * Keys name tar members and files: webdataset groups members by the part of the name before the first dot, so a
 * dot in a key would split one sample into two (webdataset #237). The caller guarantees this; a violation is a bug.
 */
export function assertKey(key: string): void {
  if (typeof key !== 'string' || key === '' || /[./\\\0]/.test(key)) {
    throw internalError(`Expected a sample key without dots or slashes but received ${JSON.stringify(key)}`);
  }
}

/** The sample json as img2dataset writes it (`json.dumps(meta, indent=4)`); bigint and bytes become JSON values. */
export function metaJson(meta: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify(meta, jsonReplacer, 4), 'utf8');
}

/**
 * The members of a sample in write order: image, caption (only when the record has one), json. Failed records
 * have no members: they live only in the shard's parquet.
 */
export function sampleMembers(record: SampleRecord): SampleMember[] {
  assertKey(record.key);
  if (record.status !== 'success') return [];
  if (!record.image) {
    throw internalError(`sample ${record.key} has status success but no image`);
  }
  const members: SampleMember[] = [{ name: `${record.key}.${record.image.format}`, data: record.image.data }];
  if (record.caption !== undefined)
    members.push({ name: `${record.key}.txt`, data: Buffer.from(record.caption, 'utf8') });
  members.push({ name: `${record.key}.json`, data: metaJson(record.meta) });
  for (const m of record.extra ?? []) members.push({ name: `${record.key}.${m.ext}`, data: m.data });
  return members;
}
