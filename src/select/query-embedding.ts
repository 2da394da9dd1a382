import { readFile } from 'node:fs/promises';
import type { ClipModel } from '../clip/index.js';
import { ClipstreamError, inputNotFound, queryInvalid } from '../core/errors.js';
import { MAX_QUERY_DIM, requireFinite } from '../core/validation.js';
import { createFetcher } from '../fetch/index.js';
import { formatShape, openNpy } from '../io/npy.js';

/**
 * A query's embedding from what users write: a text or an image (through the CLIP model), a list of numbers, or a
 * .npy file as `np.save(path, vector)` writes it. Used by plans (spec queries) and `clipstream query`.
 */
export interface QuerySource {
  text?: string;
  /** A path or an http(s) URL. */
  image?: string;
  embedding?: number[];
  /** A .npy path or an http(s) URL: shape (d,) or (1, d). */
  embedding_file?: string;
}

/** Query images (downloaded or read) above this size are refused before decoding. */
export const MAX_QUERY_IMAGE_BYTES = 20 * 1024 * 1024;

/** True when the query needs the CLIP model (text or image). */
export const needsModel = (q: QuerySource) => q.text !== undefined || q.image !== undefined;

/** The query's unit vector; `what` names the query in messages (`query cats`, `--embedding-file`). */
export async function embedQuery(q: QuerySource, model: ClipModel | undefined, what: string): Promise<Float32Array> {
  if (q.text !== undefined) return (await model!.encodeText([q.text]))[0]!;
  if (q.image !== undefined) return (await model!.encodeImages([await readQueryImage(q.image, what)]))[0]!;
  if (q.embedding !== undefined) return normalise(Float32Array.from(q.embedding), what);
  return normalise(await readEmbeddingFile(q.embedding_file!, what), what);
}

/**
 * One embedding from a .npy: `(d,)` — what `np.save(path, vector)` writes — or `(1, d)`. A file of several rows is
 * refused (taking row 0 silently would query something the user did not mean).
 */
export async function readEmbeddingFile(location: string, what: string): Promise<Float32Array> {
  // the one finite check with the query's name comes in normalise (the reader's own would name rows of the file)
  const npy = await openNpy(location, { checkFinite: false }).catch((err: unknown) => {
    throw err instanceof ClipstreamError ? err : inputNotFound(`${what}: embedding file not found: ${location}`);
  });
  try {
    const { shape } = npy.header;
    const values = shape.length === 1 ? shape[0]! : shape[0] === 1 ? shape[1]! : -1;
    if (values < 0) {
      throw queryInvalid(
        `${what}: ${location} has shape ${formatShape(shape)}, ${shape[0]} embeddings; a query is one embedding, shape (d,) or (1, d)`,
        {
          hint: 'Save one query per file (np.save(path, embeddings[i])), or give each as its own query.',
        },
      );
    }
    if (values === 0) throw queryInvalid(`${what}: ${location} holds no embedding (shape ${formatShape(shape)})`);
    if (values > MAX_QUERY_DIM)
      throw queryInvalid(`${what}: ${location} has ${values} values; a query embedding has at most ${MAX_QUERY_DIM}`);
    return shape.length === 1 ? await npy.readRows(0, values) : await npy.readRows(0, 1);
  } finally {
    await npy.close();
  }
}

/** The user wrote this location themselves, so private addresses are allowed (unlike URLs found in data). */
export async function readQueryImage(location: string, what: string): Promise<Buffer> {
  if (!/^https?:\/\//i.test(location)) {
    const bytes = await readFile(location).catch(() => {
      throw inputNotFound(`${what}: image not found: ${location}`);
    });
    if (bytes.length > MAX_QUERY_IMAGE_BYTES)
      throw queryInvalid(
        `${what}: ${location} is ${bytes.length} bytes; query images are limited to ${MAX_QUERY_IMAGE_BYTES}`,
      );
    return bytes;
  }
  const fetcher = createFetcher({ allowPrivateNetworks: true, timeoutMs: 30_000, maxBytes: MAX_QUERY_IMAGE_BYTES });
  try {
    const fetched = await fetcher.fetch(location);
    if (!fetched.ok)
      throw inputNotFound(`${what}: image ${location} could not be downloaded: ${fetched.reason} (${fetched.message})`);
    return fetched.bytes;
  } finally {
    await fetcher.close();
  }
}

/** A unit vector, after the finite check every query embedding goes through. */
export function normalise(v: Float32Array, what: string): Float32Array {
  requireFinite(v, what);
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  if (!(norm > 0) || !Number.isFinite(norm))
    throw queryInvalid(`${what}: the embedding is all zeros, so it has no direction to search`);
  return v.map((x) => x / norm);
}
