import type { FastifyInstance } from 'fastify';
import { Semaphore } from '../core/async.js';
import { imageUnavailable, notFound, queryInvalid, serverBusy } from '../core/errors.js';
import { defaultImageOptions, processImage, type ImageOptions } from '../image/index.js';
import { indexNamed, type ServerContext } from './app.js';

/** Thumbnails fit in 192 × 192 pixels, as jpg: ~6 KB each, so the default 64 MB cache holds ~10 000. */
const THUMB: ImageOptions = {
  ...defaultImageOptions,
  imageSize: 192,
  resizeMode: 'keep_ratio_largest',
  resizeOnlyIfBigger: true,
  encodeFormat: 'jpg',
  encodeQuality: 80,
};
/** What a cached failure costs in the byte budget (its key, reason and message). */
const FAILURE_BYTES = 256;

type Thumb = { ok: true; jpg: Buffer } | { ok: false; reason: string; message: string };

/** An LRU of thumbnails bounded in bytes; a Map iterates in insertion order, so its first key is the oldest. */
class ThumbCache {
  private readonly entries = new Map<string, Thumb>();
  private bytes = 0;
  constructor(private readonly maxBytes: number) {}

  get(key: string): Thumb | undefined {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  set(key: string, thumb: Thumb): void {
    const size = thumb.ok ? thumb.jpg.length : FAILURE_BYTES;
    if (size > this.maxBytes) return;
    this.entries.set(key, thumb);
    this.bytes += size;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= v.ok ? v.jpg.length : FAILURE_BYTES;
    }
  }
}

/**
 * `GET /thumbs/INDEX/ID.jpg`: the row's image, downloaded by its url through the server's fetcher (deadline, byte
 * cap, SSRF guard: the urls come from the index, which came from the web), resized to fit 192 px and cached. A dead
 * link is a 502 `IMAGE_UNAVAILABLE` naming the failure (`http_404`, `timeout`, `not_an_image`…), cached too, so the
 * page shows it as dead. Downloads at once are bounded (`limits.thumbFetches`); beyond `limits.thumbQueue`
 * waiting, 503.
 */
export function registerThumbRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const cache = new ThumbCache(ctx.limits.thumbCacheBytes);
  const slots = new Semaphore(ctx.limits.thumbFetches);
  const running = new Map<string, Promise<Thumb>>();

  async function make(indexName: string, id: number): Promise<Thumb> {
    const index = ctx.indices.get(indexName)!;
    const [row] = await index.getByIds([id]);
    if (!row) throw notFound(`index ${indexName} has no row ${id}`);
    const url = row.metadata.url;
    if (typeof url !== 'string' || url === '') return { ok: false, reason: 'no_url', message: 'the row has no url' };
    const fetched = await ctx.fetcher.fetch(url);
    if (!fetched.ok) return { ok: false, reason: fetched.reason, message: fetched.message };
    const image = await processImage(fetched.bytes, THUMB);
    if (!image.ok) return { ok: false, reason: image.reason, message: image.message };
    return { ok: true, jpg: image.data };
  }

  async function thumb(indexName: string, id: number): Promise<Thumb> {
    const key = `${indexName}/${id}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const shared = running.get(key);
    if (shared) return shared;
    if (slots.pending >= ctx.limits.thumbQueue)
      throw serverBusy(`${slots.pending} thumbnails are waiting to be downloaded`, { hint: 'Retry after a second.' });
    const work = slots.use(() => make(indexName, id)).finally(() => running.delete(key));
    running.set(key, work);
    const made = await work;
    cache.set(key, made);
    return made;
  }

  app.get<{ Params: { index: string; file: string } }>('/thumbs/:index/:file', async (req, reply) => {
    const { index, file } = req.params;
    indexNamed(ctx, index);
    const m = /^(\d{1,15})\.jpg$/.exec(file);
    if (!m) throw queryInvalid(`expected /thumbs/${index}/ID.jpg with a row id but received ${JSON.stringify(file)}`);
    const t = await thumb(index, Number(m[1]));
    if (!t.ok)
      throw imageUnavailable(`row ${m[1]}: dead link (${t.reason}): ${t.message}`, {
        hint: "The image at this row's url could not be downloaded or decoded: a stream would replace it.",
      });
    return reply.type('image/jpeg').header('cache-control', 'private, max-age=3600').send(t.jpg);
  });
}
