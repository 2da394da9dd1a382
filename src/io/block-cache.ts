/**
 * A ByteSource with an LRU cache of fixed-size blocks in front, bounded in bytes. A read is served from cached
 * blocks; the missing ones are fetched in one read per contiguous run (one HTTP request for a 5 MB faiss list, not
 * 80), and concurrent reads of the same block share one fetch. A read spanning more than a quarter of the cache
 * bypasses it: a whole-file scan must not flush what every search needs.
 */
import { inputMalformed, invalidOption } from '../core/errors.js';
import type { ByteSource } from './byte-source.js';

export interface BlockCacheOptions {
  /** Most bytes the cache holds (whole blocks). 0 disables caching. */
  maxBytes: number;
  /** Block size in bytes. Default 64 KiB: a local read of that size costs about as much as one of 4 KiB. */
  blockBytes?: number;
}

export interface CachedByteSource extends ByteSource {
  /** Bytes read from the underlying source so far (cache misses and bypasses). */
  readonly bytesFetched: number;
  /** Bytes the cache holds now. */
  readonly cachedBytes: number;
}

const DEFAULT_BLOCK = 64 * 1024;

export function withBlockCache(source: ByteSource, opts: BlockCacheOptions): CachedByteSource {
  const block = opts.blockBytes ?? DEFAULT_BLOCK;
  if (!Number.isSafeInteger(block) || block < 512)
    throw invalidOption(`Expected a block size of at least 512 bytes but received ${block}`);
  if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes < 0) {
    throw invalidOption(`Expected a cache size in bytes (an integer ≥ 0) but received ${opts.maxBytes}`);
  }
  const maxBytes = opts.maxBytes;
  /** Block number → bytes; Map order is recency (oldest first). */
  const cache = new Map<number, Uint8Array>();
  const pending = new Map<number, Promise<Uint8Array>>();
  let cachedBytes = 0;
  let bytesFetched = 0;

  const store = (index: number, bytes: Uint8Array) => {
    if (cache.has(index)) return;
    cache.set(index, bytes);
    cachedBytes += bytes.length;
    for (const [oldest, old] of cache) {
      if (cachedBytes <= maxBytes) break;
      cache.delete(oldest);
      cachedBytes -= old.length;
    }
  };

  /** Fetches blocks [first, last] with one read; each block lands in the cache on its own (a copy, so eviction frees it). */
  const fetchRun = (first: number, last: number): Promise<Uint8Array>[] => {
    const start = first * block;
    const end = Math.min((last + 1) * block, source.size);
    const run = new Uint8Array(end - start);
    bytesFetched += run.length;
    const done = source.readInto(start, run);
    const blocks: Promise<Uint8Array>[] = [];
    for (let b = first; b <= last; b++) {
      const from = (b - first) * block;
      const one = done.then(() => {
        const bytes = run.slice(from, Math.min(from + block, run.length));
        store(b, bytes);
        return bytes;
      });
      one.finally(() => pending.delete(b)).catch(() => {});
      pending.set(b, one);
      blocks.push(one);
    }
    return blocks;
  };

  const readInto = async (offset: number, into: Uint8Array): Promise<void> => {
    if (into.length === 0) return;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + into.length > source.size) {
      throw inputMalformed(
        `truncated: ${source.name} is ${source.size} bytes, a read asked for bytes ${offset}-${offset + into.length - 1}`,
        {
          hint: 'The file was cut short, or its header claims more than it holds; copy or rebuild it.',
        },
      );
    }
    const first = Math.floor(offset / block);
    const last = Math.floor((offset + into.length - 1) / block);
    if ((last - first + 1) * block > maxBytes / 4) {
      bytesFetched += into.length;
      return source.readInto(offset, into);
    }
    const parts: (Uint8Array | Promise<Uint8Array>)[] = [];
    let missingFrom = -1;
    for (let b = first; b <= last + 1; b++) {
      const have = b <= last ? (cache.get(b) ?? pending.get(b)) : undefined;
      if (have === undefined && b <= last) {
        if (missingFrom < 0) missingFrom = b;
        continue;
      }
      if (missingFrom >= 0) {
        parts.push(...fetchRun(missingFrom, b - 1));
        missingFrom = -1;
      }
      if (have instanceof Uint8Array) {
        cache.delete(b); // most recently used now
        cache.set(b, have);
      }
      if (have !== undefined) parts.push(have);
    }
    const blocks = await Promise.all(parts);
    for (let i = 0; i < blocks.length; i++) {
      const blockStart = (first + i) * block;
      const from = Math.max(offset, blockStart);
      const to = Math.min(offset + into.length, blockStart + blocks[i]!.length);
      into.set(blocks[i]!.subarray(from - blockStart, to - blockStart), from - offset);
    }
  };

  return {
    name: source.name,
    size: source.size,
    readInto,
    close: () => {
      cache.clear();
      cachedBytes = 0;
      return source.close();
    },
    get bytesFetched() {
      return bytesFetched;
    },
    get cachedBytes() {
      return cachedBytes;
    },
  };
}
