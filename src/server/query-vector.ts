import sharp, { type Metadata } from 'sharp';
import { queryInvalid } from '../core/errors.js';
import { requireFinite } from '../core/validation.js';
import { normalise } from '../select/query-embedding.js';
import type { ServerContext } from './app.js';

/** A query as an HTTP client sends it: exactly one of these (the caller checks that). */
export interface QueryInput {
  text?: string;
  /** Base64 image bytes (a `data:` URL's prefix is allowed). */
  image?: string;
  /** An image URL the server downloads through its fetcher (SSRF guard). */
  image_url?: string;
  embedding?: number[];
}

export interface QueryVectorOptions {
  /** The index's dimension, and its name for messages. */
  dim: number;
  indexName: string;
  /** What the embedding field is called in this API (`embedding_input` for clip back, `embedding` for /api). */
  embeddingField: string;
  /** Scale an embedding to unit length (a plan does; clip back uses it as given). */
  normalise?: boolean;
}

/**
 * The query's vector: an embedding checked (finite, the index's dimension), or a text or image embedded by the
 * server's model. Images are checked against the pixel limit from their header before they are decoded.
 */
export async function queryVectorOf(q: QueryInput, ctx: ServerContext, o: QueryVectorOptions): Promise<Float32Array> {
  if (q.embedding) {
    requireFinite(q.embedding, o.embeddingField);
    if (q.embedding.length !== o.dim) {
      throw queryInvalid(
        `${o.embeddingField} has ${q.embedding.length} dimensions but index ${o.indexName} has ${o.dim}`,
        { hint: 'Embed the query with the model that built the index.' },
      );
    }
    const vector = Float32Array.from(q.embedding);
    return o.normalise ? normalise(vector, o.embeddingField) : vector;
  }
  if (!ctx.model)
    throw queryInvalid(
      `this server was started without --model: send ${o.embeddingField}, or restart it with a CLIP model`,
    );
  if (q.text) return (await ctx.model.encodeText([q.text]))[0]!;
  const field = q.image !== undefined ? 'image' : 'image_url';
  let bytes: Buffer;
  if (q.image !== undefined) {
    bytes = Buffer.from(q.image.replace(/^data:[^,]*;base64,/, ''), 'base64');
    if (bytes.length === 0) throw queryInvalid('image: expected base64-encoded image bytes');
  } else {
    const fetched = await ctx.fetcher.fetch(q.image_url!);
    if (!fetched.ok) throw queryInvalid(`image_url could not be downloaded: ${fetched.reason} (${fetched.message})`);
    bytes = fetched.bytes;
  }
  await checkImageHeader(bytes, field, ctx.limits.queryImagePixels);
  try {
    return (await ctx.model.encodeImages([bytes]))[0]!;
  } catch (err) {
    throw queryInvalid(`${field}: not a decodable image (${(err as Error).message})`);
  }
}

/** The pixel limit, from the header, before anything is decoded: a 748 KB PNG can declare 16000 × 16000. */
async function checkImageHeader(bytes: Buffer, field: string, maxPixels: number): Promise<void> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw queryInvalid(`${field}: not a decodable image (${(err as Error).message})`);
  }
  const pixels = (meta.width ?? 0) * (meta.height ?? 0) * Math.max(1, meta.pages ?? 1);
  if (pixels > maxPixels) {
    throw queryInvalid(
      `${field}: the image is ${meta.width} × ${meta.height}${(meta.pages ?? 1) > 1 ? ` × ${meta.pages} frames` : ''}, over the ${maxPixels} pixels a query image may have`,
      { hint: 'Send a smaller image: CLIP sees 224 × 224 pixels anyway.' },
    );
  }
}
