import Fastify, { type FastifyInstance } from 'fastify';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import { z } from 'zod';
import type { ClipModel } from '../clip/index.js';
import { isClipstreamError } from '../core/errors.js';
import type { Fetcher } from '../fetch/index.js';
import type { Index } from '../index/index.js';
import { registerStreamRoutes, type ServedStream } from './streams.js';

export interface ClipBackOptions {
  indices: Map<string, Index>;
  /** Embeds `text` / `image` / `image_url` queries; without it only `embedding_input` is accepted. */
  model?: ClipModel;
  /** Downloads `image_url` queries (with the SSRF guard of src/fetch). */
  fetcher: Fetcher;
  /** Upper bound on num_result_ids (clip back has none and falls over, #164 #251). */
  maxResults?: number;
  /** Streams served as webdataset tars per partition (docs/streaming.md). */
  streams?: Map<string, ServedStream>;
}

const knnBody = z
  .object({
    indice_name: z.string(),
    modality: z.enum(['image', 'text']).default('image'),
    num_images: z.number().int().min(1),
    num_result_ids: z.number().int().min(1).optional(),
    text: z.string().optional(),
    image: z.string().optional(),
    image_url: z.string().optional(),
    embedding_input: z.array(z.number()).optional(),
    deduplicate: z.boolean().default(false),
    use_safety_model: z.boolean().default(false),
    use_violence_detector: z.boolean().default(false),
    use_mclip: z.boolean().default(false),
    aesthetic_score: z.union([z.number().int().min(0).max(9), z.literal('')]).optional(),
    aesthetic_weight: z.number().optional(),
  })
  .passthrough();

const metadataBody = z.object({ indice_name: z.string(), ids: z.array(z.number().int()) });

class BadRequest extends Error {}

/**
 * clip-retrieval's back (`clip back` 2.45) wire format: GET /indices-list, POST /knn-service, POST /metadata, with
 * its field names and response shapes. Bad bodies get a 400 naming the field (clip back answers 500); options we
 * cannot honour get a 400 saying so rather than silently returning something else.
 */
export function clipBackServer(o: ClipBackOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 32 * 1024 * 1024 });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({ name: 'clipstream_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [registry] });
  app.addHook('onResponse', async (req, reply) => {
    requests.inc({ route: req.routeOptions.url ?? 'unknown', status: String(reply.statusCode) });
  });
  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof BadRequest || isClipstreamError(err) || (err as { statusCode?: number }).statusCode === 400) {
      return reply.code(400).send({ error: (err as Error).message });
    }
    return reply.code(500).send({ error: 'internal error' });
  });

  const indexNamed = (name: string) => {
    const index = o.indices.get(name);
    if (!index) throw new BadRequest(`unknown indice_name ${JSON.stringify(name)}; this server has: ${[...o.indices.keys()].join(', ')}`);
    return index;
  };

  registerStreamRoutes(app, registry, o.streams ?? new Map());

  app.get('/indices-list', async () => [...o.indices.keys()]);

  app.post('/knn-service', async (req) => {
    const body = parse(knnBody, req.body);
    const index = indexNamed(body.indice_name);
    if (body.use_safety_model) throw new BadRequest('use_safety_model: this server has no safety model data; send use_safety_model: false');
    if (body.use_violence_detector) throw new BadRequest('use_violence_detector: this server has no violence detector; send use_violence_detector: false');
    if (body.aesthetic_score !== undefined && body.aesthetic_score !== '') throw new BadRequest('aesthetic_score: this server has no aesthetic embeddings; send aesthetic_score: ""');
    if (body.use_mclip) throw new BadRequest('use_mclip: this server has no multilingual CLIP; send use_mclip: false');
    const queries = (['text', 'image', 'image_url', 'embedding_input'] as const).filter((k) => body[k] !== undefined);
    if (queries.length !== 1) throw new BadRequest(`expected exactly one of text, image, image_url, embedding_input; received ${queries.length === 0 ? 'none' : queries.join(', ')}`);
    const numResultIds = Math.min(Math.max(body.num_result_ids ?? body.num_images, body.num_images), o.maxResults ?? 10_000);
    const vector = await queryVector(body, index.info.dim);
    const results = await index.search({
      vector,
      k: numResultIds,
      dedupUrls: body.deduplicate,
      nearDuplicate: body.deduplicate ? 0.94 : undefined, // clip back's threshold
      column: body.modality === 'text' ? 'text_vector' : 'vector',
    });
    return results.map((r, i) => (i < body.num_images ? r : { id: r.id, similarity: r.similarity }));
  });

  app.post('/metadata', async (req) => {
    const body = parse(metadataBody, req.body);
    return indexNamed(body.indice_name).getByIds(body.ids);
  });

  app.get('/metrics', async (_req, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });

  async function queryVector(body: z.output<typeof knnBody>, dim: number): Promise<Float32Array> {
    if (body.embedding_input) {
      if (body.embedding_input.length !== dim) {
        throw new BadRequest(`embedding_input has ${body.embedding_input.length} dimensions but index ${body.indice_name} has ${dim}`);
      }
      return Float32Array.from(body.embedding_input);
    }
    if (!o.model) throw new BadRequest('this server was started without --model: send embedding_input, or restart it with a CLIP model');
    if (body.text !== undefined) return (await o.model.encodeText([body.text]))[0]!;
    let bytes: Buffer;
    if (body.image !== undefined) {
      bytes = Buffer.from(body.image, 'base64');
      if (bytes.length === 0) throw new BadRequest('image: expected base64-encoded image bytes');
    } else {
      const fetched = await o.fetcher.fetch(body.image_url!);
      if (!fetched.ok) throw new BadRequest(`image_url could not be downloaded: ${fetched.reason} (${fetched.message})`);
      bytes = fetched.bytes;
    }
    try {
      return (await o.model.encodeImages([bytes]))[0]!;
    } catch (err) {
      throw new BadRequest(`${body.image !== undefined ? 'image' : 'image_url'}: not a decodable image (${(err as Error).message})`);
    }
  }

  return app;
}

function parse<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.join('.') || 'body';
  throw new BadRequest(`${field}: ${issue.message}`);
}
