import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { queryInvalid } from '../core/errors.js';
import { parseOptions } from '../core/validation.js';
import type { Index } from '../index/index.js';
import { indexNamed, type ServerContext } from './app.js';
import { queryVectorOf } from './query-vector.js';

/** Absent fields: ClipClient sends every query field, with null for the unused ones. */
const nullish = <S extends z.ZodType>(schema: S) => schema.nullish().transform((v) => v ?? undefined);
/** clip back runs int() / float() on these, so numbers may come as strings (clip-front sends "9"). */
const intLike = z.union([
  z.number().int(),
  z
    .string()
    .regex(/^\s*-?\d+\s*$/)
    .transform(Number),
]);

const knnBody = z
  .object({
    indice_name: z.string(),
    modality: nullish(z.enum(['image', 'text'])).default('image'),
    num_images: intLike.pipe(z.number().int().min(1)),
    num_result_ids: nullish(intLike.pipe(z.number().int().min(1))),
    text: nullish(z.string()),
    image: nullish(z.string()),
    image_url: nullish(z.string()),
    // any number: NaN and infinities get the one message every query embedding gets (requireFinite)
    embedding_input: nullish(z.array(z.custom<number>((v) => typeof v === 'number', 'Expected a number'))),
    deduplicate: nullish(z.boolean()).default(false),
    use_safety_model: nullish(z.boolean()).default(false),
    use_violence_detector: nullish(z.boolean()).default(false),
    use_mclip: nullish(z.boolean()).default(false),
    aesthetic_score: nullish(z.union([z.number(), z.string()])),
    aesthetic_weight: nullish(z.union([z.number(), z.string()])),
  })
  .passthrough();
type KnnBody = z.output<typeof knnBody>;
const BODY_HINT = "clip back's fields: see docs/server.md";

const metadataBody = z.object({ indice_name: z.string(), ids: z.array(z.number().int()) });

/** Options clip back skips when it has not loaded what they need, as we do: they are reported, not refused. */
const SKIPPED = [
  ['use_safety_model', (b: KnnBody) => b.use_safety_model === true, 'no safety model'],
  ['use_violence_detector', (b: KnnBody) => b.use_violence_detector === true, 'no violence detector'],
  [
    'aesthetic_score',
    (b: KnnBody) => b.aesthetic_score !== undefined && b.aesthetic_score !== '',
    'no aesthetic embeddings',
  ],
] as const;

/**
 * clip-retrieval's back (`clip back` 2.45) wire format: GET /indices-list, POST /knn-service, POST /metadata, with
 * its field names and response shapes, as its own client (ClipClient) and front send them. Bad bodies get a 400
 * naming the field (clip back answers 500). A safety model, violence detector or aesthetic embeddings asked for
 * are skipped, as clip back skips what it has not loaded; the `x-clipstream-skipped` header and the log say so.
 */
export function registerClipBackRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/indices-list', async () => [...ctx.indices.keys()]);

  app.post('/knn-service', async (req, reply) => {
    const body = parseOptions(knnBody, req.body ?? {}, undefined, BODY_HINT);
    const index = indexNamedByClipBack(ctx, body.indice_name);
    const skipped = SKIPPED.filter(([, asked]) => asked(body));
    if (skipped.length > 0) {
      void reply.header('x-clipstream-skipped', skipped.map(([name]) => name).join(', '));
      for (const [name, , why] of skipped)
        ctx.logOnce(
          `/knn-service: ${name} asked for and skipped: this server has ${why} (clip back skips it too when not loaded)`,
        );
    }
    const numResultIds = checkKnnBody(body, ctx.limits.results);
    return ctx.bounded(async () => {
      const vector = await queryVectorOf({ ...body, embedding: body.embedding_input }, ctx, {
        dim: index.info.dim,
        indexName: body.indice_name,
        embeddingField: 'embedding_input',
      });
      // clip back's deduplicate is its near-duplicate removal only (urls are deduplicated by its front)
      const results = await index.search({
        vector,
        k: numResultIds,
        nearDuplicate: body.deduplicate ? 0.94 : undefined, // clip back's threshold
        column: body.modality === 'text' ? 'text_vector' : 'vector',
      });
      return results.map((r, i) => (i < body.num_images ? r : { id: r.id, similarity: r.similarity }));
    });
  });

  app.post('/metadata', async (req) => {
    const body = parseOptions(metadataBody, req.body ?? {}, undefined, BODY_HINT);
    const index = indexNamedByClipBack(ctx, body.indice_name);
    if (body.ids.length > ctx.limits.metadataIds)
      throw queryInvalid(`ids: at most ${ctx.limits.metadataIds} per request, received ${body.ids.length}`, {
        hint: 'Split the ids over several requests.',
      });
    return ctx.bounded(() => index.getByIds(body.ids));
  });
}

const indexNamedByClipBack = (ctx: ServerContext, name: string): Index =>
  indexNamed(ctx, name, { field: 'indice_name', error: queryInvalid });

/** Exactly one query field, no multilingual text, a bounded result count; returns num_result_ids. */
function checkKnnBody(body: KnnBody, maxResults: number): number {
  // clip back takes an empty text as no text (clip-front sends one with an image query)
  const queries = (['text', 'image', 'image_url', 'embedding_input'] as const).filter(
    (k) => body[k] !== undefined && !(k === 'text' && body.text === ''),
  );
  if (queries.length !== 1)
    throw queryInvalid(
      `expected exactly one of text, image, image_url, embedding_input; received ${queries.length === 0 ? 'none' : queries.join(', ')}`,
    );
  if (body.use_mclip && body.text !== undefined)
    throw queryInvalid("use_mclip: this server has no multilingual CLIP; send use_mclip: false (ClipClient's default)");
  const numResultIds = Math.max(body.num_result_ids ?? body.num_images, body.num_images);
  if (numResultIds > maxResults) {
    throw queryInvalid(
      `num_images / num_result_ids: at most ${maxResults} results per request, asked for ${numResultIds}`,
      { hint: 'Page with /metadata, or use `clipstream plan` for large result sets.' },
    );
  }
  return numResultIds;
}
