import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import tar from 'tar-stream';
import type { SampleRecord } from '../../src/core/types.js';

export interface TarMember {
  name: string;
  data: Buffer;
  mode: number | undefined;
  type: string | null | undefined;
}

/** Every member of a tar, in order, parsed with tar-stream's extract. */
export async function readTarMembers(source: string | Readable): Promise<TarMember[]> {
  const input = typeof source === 'string' ? createReadStream(source) : source;
  const extract = tar.extract();
  input.pipe(extract);
  const members: TarMember[] = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    members.push({
      name: entry.header.name,
      data: Buffer.concat(chunks),
      mode: entry.header.mode,
      type: entry.header.type,
    });
  }
  return members;
}

export async function readParquet(path: string) {
  const file = await asyncBufferFromFile(path);
  const metadata = await parquetMetadataAsync(file);
  const rows = (await parquetReadObjects({ file, metadata, utf8: false })) as Record<string, unknown>[];
  const schema = parquetSchema(metadata);
  return {
    rows,
    metadata,
    columns: schema.children.map((c) => ({
      name: c.element.name,
      type: c.element.type,
      convertedType: c.element.converted_type,
    })),
    rowGroups: metadata.row_groups.map((g) => Number(g.num_rows)),
  };
}

/** A fake "image": distinct bytes per key, of the given size. */
export function fakeImage(key: string, size = 200): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (key.charCodeAt(i % key.length) * 31 + i) & 0xff;
  return bytes;
}

export function successRecord(
  key: string,
  extra: { caption?: string; size?: number; columns?: Record<string, unknown> } = {},
): SampleRecord {
  const data = fakeImage(key, extra.size);
  return {
    key,
    status: 'success',
    meta: {
      url: `http://example.test/${key}.jpg`,
      caption: extra.caption ?? null,
      ...extra.columns,
      key,
      status: 'success',
      error_message: null,
      reason: null,
      width: 64,
      height: 48,
      original_width: 640,
      original_height: 480,
      sha256: 'ab'.repeat(32),
    },
    image: { data, format: 'jpg' },
    ...(extra.caption !== undefined ? { caption: extra.caption } : {}),
  };
}

export function failedRecord(
  key: string,
  status: 'failed_to_download' | 'failed_to_resize' = 'failed_to_download',
  reason = 'http_404',
  message = 'HTTP Error 404: Not Found',
  extra: { caption?: string; columns?: Record<string, unknown> } = {},
): SampleRecord {
  return {
    key,
    status,
    meta: {
      url: `http://example.test/${key}.jpg`,
      caption: extra.caption ?? null,
      ...extra.columns,
      key,
      status,
      error_message: message,
      reason,
      width: null,
      height: null,
      original_width: status === 'failed_to_resize' ? 10 : null,
      original_height: status === 'failed_to_resize' ? 10 : null,
      sha256: null,
    },
    ...(extra.caption !== undefined ? { caption: extra.caption } : {}),
  };
}
