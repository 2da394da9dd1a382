import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openByteSource, readBytes, type ByteSource } from '../../src/io/byte-source.js';
import { withBlockCache } from '../../src/io/block-cache.js';
import { ClipstreamError } from '../../src/core/errors.js';
import { tempDir } from '../helpers/tmp.js';

/** A real file source that records every read it is asked for. */
async function countingFile(bytes: Uint8Array) {
  const path = join(await tempDir(), 'data.bin');
  await writeFile(path, bytes);
  const { source } = await openByteSource(path);
  const reads: [number, number][] = [];
  const counted: ByteSource = {
    name: source.name,
    size: source.size,
    readInto: (offset, into) => {
      reads.push([offset, into.length]);
      return source.readInto(offset, into);
    },
    close: () => source.close(),
  };
  return { source: counted, reads };
}

describe('withBlockCache', () => {
  const data = new Uint8Array(randomBytes(1_000_003));

  it('returns the file bytes for any range, and misses only once per block', async () => {
    const { source, reads } = await countingFile(data);
    const cached = withBlockCache(source, { maxBytes: 4 << 20, blockBytes: 4096 });
    let seed = 7;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let i = 0; i < 300; i++) {
      const offset = rand(data.length);
      const length = Math.min(rand(20_000) + 1, data.length - offset);
      expect(
        Buffer.from(await readBytes(cached, offset, length)).equals(
          Buffer.from(data.subarray(offset, offset + length)),
        ),
      ).toBe(true);
    }
    // The last (short) block included: nothing beyond the file was fetched, and no block twice.
    expect(cached.bytesFetched).toBeLessThanOrEqual(data.length);
    const fetched = new Set<number>();
    for (const [offset, length] of reads) {
      for (let b = offset / 4096; b < (offset + length) / 4096; b++) {
        expect(fetched.has(b), `block ${b} fetched twice`).toBe(false);
        fetched.add(b);
      }
    }
    await cached.close();
  });

  it('fetches a run of missing blocks with one read and shares a pending fetch', async () => {
    const { source, reads } = await countingFile(data);
    const cached = withBlockCache(source, { maxBytes: 1 << 20, blockBytes: 1024 });
    await readBytes(cached, 5000, 10); // block 4
    await readBytes(cached, 9000, 10); // block 8
    reads.length = 0;
    await readBytes(cached, 3000, 9000); // blocks 2..11: 4 and 8 cached → runs 2-3, 5-7, 9-11
    expect(reads).toEqual([
      [2048, 2048],
      [5120, 3072],
      [9216, 3072],
    ]);
    reads.length = 0;
    const [a, b] = await Promise.all([readBytes(cached, 20_000, 100), readBytes(cached, 20_050, 100)]);
    expect(reads).toEqual([[19_456, 1024]]);
    expect(Array.from(a.subarray(50))).toEqual(Array.from(b.subarray(0, 50)));
    await cached.close();
  });

  it('stays within its byte bound (least recently used out) and large reads bypass it', async () => {
    const { source, reads } = await countingFile(data);
    const cached = withBlockCache(source, { maxBytes: 8192, blockBytes: 1024 });
    for (let b = 0; b < 20; b++) await readBytes(cached, b * 1024, 1);
    expect(cached.cachedBytes).toBe(8192);
    await readBytes(cached, 12 * 1024, 1); // still cached: recent
    reads.length = 0;
    await readBytes(cached, 12 * 1024, 1);
    await readBytes(cached, 0, 1); // evicted long ago
    expect(reads).toEqual([[0, 1024]]);
    reads.length = 0;
    await readBytes(cached, 100_000, 4000); // 4+ blocks > maxBytes / 4: straight through
    expect(reads).toEqual([[100_000, 4000]]);
    expect(cached.cachedBytes).toBeLessThanOrEqual(8192);
    await cached.close();
  });

  it('a read past the end is INPUT_MALFORMED naming the file, before any fetch', async () => {
    const { source, reads } = await countingFile(data);
    const cached = withBlockCache(source, { maxBytes: 1 << 20 });
    const err = await readBytes(cached, data.length - 10, 11).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClipstreamError);
    expect((err as ClipstreamError).code).toBe('INPUT_MALFORMED');
    expect((err as ClipstreamError).message).toMatch(/truncated: .*data\.bin is 1000003 bytes/);
    expect(reads).toEqual([]);
    await cached.close();
  });
});
