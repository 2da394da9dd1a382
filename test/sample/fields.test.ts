import { describe, expect, it } from 'vitest';
import { manifestLine, streamedSampleColumns, streamedSampleJson } from '../../src/sample/fields.js';

const parts = {
  key: 'e0p0s0',
  url: 'http://x/1.jpg',
  caption: 'a cat',
  metadata: { url: 'http://x/1.jpg', caption: 'a cat', width: 800, license: 'cc-by', NSFW: 'UNLIKELY' },
  width: 256,
  height: 256,
  originalWidth: 800,
  originalHeight: 600,
  sha256: 'ab'.repeat(32),
  id: 7,
  query: 'cats',
  similarity: 0.31,
  partition: 0,
  epoch: 0,
  repeat: false,
};

describe("one list of a streamed sample's fields", () => {
  it("json and parquet share one order: the index's other columns, then img2dataset's fields, then ours", () => {
    const json = streamedSampleJson(parts);
    const columns = streamedSampleColumns([parts]).map((c) => c.name);
    expect(Object.keys(json)).toEqual(columns);
    expect(columns).toEqual([
      'license',
      'NSFW',
      'caption',
      'url',
      'key',
      'status',
      'error_message',
      'width',
      'height',
      'original_width',
      'original_height',
      'sha256',
      'id',
      'query',
      'similarity',
      'partition',
      'epoch',
      'repeat',
    ]);
    // a metadata column named like a field (the index's own width) gives way to the field
    expect(json.width).toBe(256);
  });

  it('the manifest takes its fields from the json', () => {
    const line = JSON.parse(manifestLine(streamedSampleJson(parts), new Date(0))) as Record<string, unknown>;
    expect(line).toEqual({
      key: 'e0p0s0',
      id: 7,
      url: 'http://x/1.jpg',
      query: 'cats',
      similarity: 0.31,
      sha256: 'ab'.repeat(32),
      repeat: false,
      time: '1970-01-01T00:00:00.000Z',
    });
  });
});
