import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSampleCache, type CachedOutcome } from '../../src/stream/cache.js';
import { tempDir } from '../helpers/tmp.js';

const sample = (bytes: number): CachedOutcome => ({
  ok: true,
  image: Buffer.alloc(bytes, 7),
  format: 'jpg',
  width: 8,
  height: 8,
  originalWidth: 16,
  originalHeight: 16,
  sha256: null,
});

async function filesIn(dir: string): Promise<number> {
  let n = 0;
  for (const sub of await readdir(dir, { recursive: true, withFileTypes: true }))
    if (sub.isFile() && sub.name.endsWith('.bin')) n++;
  return n;
}

describe('the sample cache', () => {
  it('stays within its byte limit under concurrent puts, evicting each entry once, least recently used first', async () => {
    const dir = await tempDir();
    const cache = await openSampleCache({ dir, maxBytes: 20_000, namespace: 'n' });
    // 200 entries of ~1 KB written 10 at a time: ten times the limit
    for (let round = 0; round < 20; round++) {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => cache.put(`http://x/${round * 10 + i}.jpg`, sample(1000))),
      );
      await new Promise((r) => setTimeout(r, 3)); // last-use times have a millisecond's resolution
      await cache.get('http://x/0.jpg'); // kept warm: used after every round, it survives every eviction
      await new Promise((r) => setTimeout(r, 3));
    }
    const stats = cache.stats();
    expect(stats.bytes).toBeLessThanOrEqual(20_000);
    expect(stats.writes).toBe(200);
    expect(stats.evictions).toBe(stats.writes - stats.entries); // each entry evicted once (was counted by every eviction that met it)
    expect(await filesIn(join(dir, 'n'))).toBe(stats.entries);
    expect(await cache.get('http://x/0.jpg')).toMatchObject({ ok: true });
    await cache.close();
  });
});
