import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Semaphore } from '../core/async.js';
import { invalidOption } from '../core/errors.js';
import { IMAGE_FORMATS, type FailureReason, type ImageFormat } from '../core/types.js';

/**
 * The on-disk cache of resized samples: one file per url under `dir/<namespace>/<2 hex>/<sha256(url)>.bin`, so
 * later epochs and reruns download nothing again. Permanent failures are remembered too (a 404 stays a 404);
 * transient ones are not. Size-limited, least recently used first out. Several processes may share the folder:
 * files are written under a unique temporary name and renamed, and entries written by others are found on disk.
 */
export type CachedOutcome =
  | {
      ok: true;
      image: Buffer;
      format: ImageFormat;
      width: number;
      height: number;
      originalWidth: number;
      originalHeight: number;
      sha256: string | null;
    }
  | { ok: false; reason: FailureReason; message: string };

export interface CacheStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
  evictions: number;
  writes: number;
}

export interface SampleCache {
  get(url: string): Promise<CachedOutcome | undefined>;
  put(url: string, outcome: CachedOutcome): Promise<void>;
  stats(): CacheStats;
  close(): Promise<void>;
}

const MAGIC = Buffer.from('CSC1');
/** Cache files read or written at once (per cache, i.e. per served stream). */
const FILES_AT_ONCE = 64;
const HEADER = 12; // magic (4) + json length + image length (uint32 BE each): a truncated file is detected

/** Failures that will fail again: worth remembering. Timeouts, 5xx, 429 and network errors may not. */
export function isCacheableFailure(reason: FailureReason): boolean {
  if (reason.startsWith('http_')) {
    const status = Number(reason.slice(5));
    return status >= 400 && status < 500 && status !== 408 && status !== 429;
  }
  return !['timeout', 'connection_error', 'dns_error', 'tls_error', 'rate_limited', 'aborted'].includes(reason);
}

export async function openSampleCache(o: { dir: string; maxBytes: number; namespace: string }): Promise<SampleCache> {
  if (!Number.isFinite(o.maxBytes) || o.maxBytes <= 0)
    throw invalidOption(`Expected a size > 0 for cache.max_bytes but received ${o.maxBytes}`);
  if (!/^[0-9A-Za-z_-]{1,64}$/.test(o.namespace))
    throw invalidOption(`Expected a cache namespace of letters and digits but received ${JSON.stringify(o.namespace)}`);
  const root = join(o.dir, o.namespace);
  try {
    await mkdir(root, { recursive: true });
    const probe = join(root, `.probe-${randomBytes(4).toString('hex')}`);
    await writeFile(probe, '');
    await rm(probe);
  } catch (err) {
    throw invalidOption(
      `the cache folder ${o.dir} cannot be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      {
        hint: 'Set cache.dir in the spec to a writable folder, or null for no cache.',
      },
    );
  }

  /** path → size and last use (ms). Insertion order is not trusted: eviction sorts by lastUsed. */
  const entries = new Map<string, { size: number; lastUsed: number }>();
  let bytes = 0;
  const counters = { hits: 0, misses: 0, evictions: 0, writes: 0 };
  for (const sub of await readdir(root).catch(() => [])) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const name of await readdir(join(root, sub)).catch(() => [])) {
      const path = join(root, sub, name);
      if (!name.endsWith('.bin')) {
        if (name.includes('.tmp-')) await rm(path, { force: true }); // a writer died mid-write
        continue;
      }
      const s = await stat(path).catch(() => undefined);
      if (s?.isFile()) track(path, s.size, s.mtimeMs);
    }
  }

  function track(path: string, size: number, lastUsed: number) {
    const prev = entries.get(path);
    if (prev) bytes -= prev.size;
    entries.set(path, { size, lastUsed });
    bytes += size;
  }

  async function forget(path: string) {
    const prev = entries.get(path);
    if (prev) bytes -= prev.size;
    entries.delete(path);
    await rm(path, { force: true });
  }

  const pathOf = (url: string) => {
    const h = createHash('sha256').update(url).digest('hex');
    return join(root, h.slice(0, 2), `${h}.bin`);
  };

  /**
   * Down to 90 % of the limit, least recently used first: one sort per tenth of the cache written. One eviction at
   * a time: puts that land while it runs would each sort the whole cache again and count the same entries twice.
   */
  let evicting: Promise<void> | null = null;
  async function evict() {
    if (bytes <= o.maxBytes || evicting) return;
    evicting = (async () => {
      // puts go on during the awaits below: sort again while they keep the cache over its limit
      while (bytes > o.maxBytes * 0.9) {
        const oldest = [...entries].sort((a, b) => a[1].lastUsed - b[1].lastUsed);
        let evicted = 0;
        for (const [path, entry] of oldest) {
          if (bytes <= o.maxBytes * 0.9) break;
          if (entries.get(path) !== entry) continue; // used or rewritten since the sort: no longer the oldest
          await forget(path);
          counters.evictions++;
          evicted++;
        }
        if (evicted === 0) break;
      }
    })().finally(() => (evicting = null));
    await evicting;
  }

  // Every partition's window reads ahead (hundreds of attempts each): bound the files open at once, or a server
  // with a warm cache and a few readers held 800 fds (bench/soak), past a default `ulimit -n` of 1024.
  const files = new Semaphore(FILES_AT_ONCE);

  return {
    async get(url) {
      const path = pathOf(url);
      let data: Buffer;
      try {
        data = await files.use(() => readFile(path));
      } catch (err) {
        // only a file that is gone is forgotten: EMFILE or EIO must not delete a good entry
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && entries.has(path)) await forget(path);
        counters.misses++;
        return undefined;
      }
      const outcome = decode(data);
      if (!outcome) {
        await forget(path);
        counters.misses++;
        return undefined;
      }
      const now = Date.now();
      track(path, data.length, now);
      await utimes(path, now / 1000, now / 1000).catch(() => {});
      counters.hits++;
      return outcome;
    },
    async put(url, outcome) {
      if (!outcome.ok && !isCacheableFailure(outcome.reason)) return;
      const data = encode(outcome);
      if (data.length > o.maxBytes) return;
      const path = pathOf(url);
      const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
      try {
        await mkdir(join(path, '..'), { recursive: true });
        await files.use(() => writeFile(tmp, data));
        await rename(tmp, path);
      } catch {
        await rm(tmp, { force: true }).catch(() => {});
        return; // a full disk must not stop the stream: the cache is an optimisation
      }
      counters.writes++;
      track(path, data.length, Date.now());
      await evict();
    },
    stats: () => ({ ...counters, entries: entries.size, bytes }),
    close: async () => {},
  };
}

function encode(outcome: CachedOutcome): Buffer {
  const { image, ...meta } = outcome.ok ? outcome : { ...outcome, image: Buffer.alloc(0) };
  const json = Buffer.from(JSON.stringify(meta));
  const header = Buffer.alloc(HEADER);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(json.length, 4);
  header.writeUInt32BE(image.length, 8);
  return Buffer.concat([header, json, image]);
}

/** Untrusted bytes from disk: anything unexpected is a miss. */
function decode(data: Buffer): CachedOutcome | undefined {
  if (data.length < HEADER || !data.subarray(0, 4).equals(MAGIC)) return undefined;
  const length = data.readUInt32BE(4);
  if (HEADER + length + data.readUInt32BE(8) !== data.length) return undefined;
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(data.subarray(HEADER, HEADER + length).toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const image = data.subarray(HEADER + length);
  if (meta.ok === false) {
    if (typeof meta.reason !== 'string' || typeof meta.message !== 'string' || image.length !== 0) return undefined;
    return { ok: false, reason: meta.reason as FailureReason, message: meta.message };
  }
  const ints = [meta.width, meta.height, meta.originalWidth, meta.originalHeight];
  if (
    meta.ok !== true ||
    !(IMAGE_FORMATS as readonly unknown[]).includes(meta.format) ||
    !ints.every((v) => Number.isInteger(v) && (v as number) > 0) ||
    image.length === 0
  )
    return undefined;
  if (meta.sha256 !== null && (typeof meta.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(meta.sha256)))
    return undefined;
  return {
    ok: true,
    image: Buffer.from(image),
    format: meta.format as ImageFormat,
    width: meta.width as number,
    height: meta.height as number,
    originalWidth: meta.originalWidth as number,
    originalHeight: meta.originalHeight as number,
    sha256: meta.sha256,
  };
}
