import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { queryInvalid } from '../core/errors.js';
import { parseOptions } from '../core/validation.js';
import type { Index, SearchQuery, SearchResult } from '../index/search.js';
import { normalise } from '../select/query-embedding.js';
import { indexNamed as namedIndex, type ServerContext } from './app.js';
import type { JobSource } from './events.js';
import type { SearchAnswer, ServerInfo, ThresholdAnswer } from './wire.js';
import { queryVectorOf } from './query-vector.js';
import { registerSpecRoutes } from './web-spec.js';

/** What the page's side of `clipstream serve` knows beyond its indexes and streams. */
export interface WebOptions {
  /** Index folders by name: the page writes them into the specs it exports, as `clipstream plan` reads them. */
  indexDirs?: Map<string, string>;
  /** The folder of the server's model (`--model`): exported specs name it. */
  modelDir?: string;
  /** POST /api/streams may start streams (`clipstream serve --allow-new-streams`). */
  allowNewStreams?: boolean;
  /** Streams started from the page may reach private addresses (`--allow-private-networks`). */
  allowPrivateNetworks?: boolean;
  /** Dashboards of other jobs in this process (a `clipstream download --port`). */
  jobs?: JobSource[];
}

const API_HINT = "The page's JSON API: see docs/server.md.";

/** A query of the page: exactly one of a text, an image (base64), an image URL, an embedding, or a row ("more like this"). */
const queryShape = z
  .object({
    text: z.string().min(1).max(10_000).optional(),
    image: z.string().min(1).optional(),
    image_url: z.string().min(1).max(8192).optional(),
    embedding: z
      .array(z.custom<number>((v) => typeof v === 'number', 'Expected a number'))
      .min(1)
      .max(65_536)
      .optional(),
    like: z.number().int().min(0).optional(),
  })
  .strict()
  .refine(
    (q) => Object.values(q).filter((v) => v !== undefined).length === 1,
    'Expected exactly one of text, image, image_url, embedding, like',
  );

const searchShape = z
  .object({
    index: z.string(),
    query: queryShape,
    k: z.number().int().min(1).default(60),
    where: z.string().min(1).max(10_000).optional(),
    near_duplicate: z.boolean().default(false),
  })
  .strict();

const thresholdShape = searchShape
  .omit({ k: true })
  .extend({ min_similarity: z.number().min(-1).max(1), edge: z.number().int().min(1).max(50).default(6) })
  .strict();

/** clip back's near-duplicate threshold (cosine with a better result), used by /knn-service's `deduplicate` too. */
const NEAR_DUPLICATE = 0.94;

/**
 * The page's JSON API (docs/server.md), usable by any script: `GET /api/info`, `POST /api/search` (best rows of a
 * query, and the query's vector), `POST /api/threshold` (how many rows lie at or above a similarity — `clipstream
 * query --min-similarity`'s count — and the rows just above and just below it), plus the spec routes
 * (src/server/web-spec.ts). Searches run within the heavy-request limit.
 */
export function registerWebApi(app: FastifyInstance, ctx: ServerContext): void {
  const indexNamed = (name: string): Index => namedIndex(ctx, name);

  app.get('/api/info', async (): Promise<ServerInfo> => ({
    indices: [...ctx.indices].map(([name, index]) => ({
      name,
      location: ctx.web.indexDirs?.get(name) ?? null,
      count: index.info.count,
      dim: index.info.dim,
      columns: index.info.columns,
      has_text: index.info.has_text,
      model: index.info.model,
    })),
    model: ctx.model ? { name: ctx.model.name, location: ctx.web.modelDir ?? null } : null,
    streams: [...ctx.streams.keys()],
    allow_new_streams: ctx.web.allowNewStreams === true,
    limits: { results: ctx.limits.results },
  }));

  app.post('/api/search', async (req) => {
    const body = parseOptions(searchShape, req.body ?? {}, undefined, API_HINT);
    if (body.k > ctx.limits.results)
      throw queryInvalid(`k: at most ${ctx.limits.results} results per request, asked for ${body.k}`);
    const index = indexNamed(body.index);
    return ctx.bounded(async (): Promise<SearchAnswer> => {
      const vector = await vectorOf(body.query, body.index, index);
      const results = await index.search({ vector, k: body.k, ...filters(body) });
      return { results: [...results], truncated: results.truncated === true, vector: [...vector] };
    });
  });

  app.post('/api/threshold', async (req) => {
    const body = parseOptions(thresholdShape, req.body ?? {}, undefined, API_HINT);
    const index = indexNamed(body.index);
    return ctx.bounded(async () => {
      const vector = await vectorOf(body.query, body.index, index);
      return thresholdEdge(index, { vector, ...filters(body) }, body.min_similarity, body.edge, ctx.limits.results);
    });
  });

  /** The query's unit vector ("more like this": the row's own stored embedding). */
  async function vectorOf(q: z.output<typeof queryShape>, indexName: string, index: Index): Promise<Float32Array> {
    if (q.like === undefined)
      return queryVectorOf(q, ctx, { dim: index.info.dim, indexName, embeddingField: 'embedding', normalise: true });
    if (!index.vectorsOf)
      throw queryInvalid(
        `index ${indexName} cannot give a row's embedding ("more like this"): its backend does not keep them`,
        { hint: 'Query by text, image or embedding instead.' },
      );
    const vector = (await index.vectorsOf([q.like])).get(q.like);
    if (!vector) throw queryInvalid(`like: index ${indexName} has no row ${q.like}`);
    return normalise(vector, `row ${q.like}'s embedding`);
  }

  registerSpecRoutes(app, ctx);
}

/** What `clipstream query` applies besides the threshold: urls deduplicated, the where predicate, near-duplicates. */
function filters(body: {
  where?: string;
  near_duplicate: boolean;
}): Pick<SearchQuery, 'where' | 'dedupUrls' | 'nearDuplicate'> {
  return { where: body.where, dedupUrls: true, nearDuplicate: body.near_duplicate ? NEAR_DUPLICATE : undefined };
}

/**
 * Rows at or above `min`: their count (exact up to `bound`, `more` beyond, as `clipstream query --min-similarity`
 * counts them) and the edge — the `edge` lowest rows above it and the `edge` best rows below it. Past the bound (a
 * large index under a low threshold), where the backend searches below a similarity, the lowest rows above come
 * from a narrow band [min, min + δ) whose width is adjusted until the band holds at least `edge` rows and no more
 * than the bound (a remote clip back cannot: no edge there).
 */
export async function thresholdEdge(
  index: Index,
  q: SearchQuery,
  min: number,
  edge: number,
  bound: number,
): Promise<ThresholdAnswer> {
  const above = await index.search({ ...q, minSimilarity: min, maxResults: bound });
  const more = above.truncated === true;
  const count = above.length;
  if (more && !index.searchBelow) return { count, more, min_similarity: min, above: [], below: [] };
  const lowest = more ? await bandEdge(index, q, min, edge, bound) : above.slice(-edge);
  // a row within the search's rounding slack of `min` is counted above: never list it below as well
  const shown = new Set((more ? lowest : above).map((r) => r.id));
  const below = await rowsBelow(index, q, min, edge, bound, more ? 0 : count, shown);
  return { count, more, min_similarity: min, above: lowest, below };
}

/**
 * The `edge` best rows under `min`, none of `shown`. Urls are deduplicated after the search's limit, and rows of
 * `shown` take slots too, so it asks for more rows until `edge` are left or nothing more qualifies.
 */
async function rowsBelow(
  index: Index,
  q: SearchQuery,
  min: number,
  edge: number,
  bound: number,
  aboveCount: number,
  shown: Set<number>,
): Promise<SearchResult[]> {
  for (let extra = 2 * edge + 8; ; extra *= 4) {
    const k = Math.min((index.searchBelow ? 0 : aboveCount) + extra, bound);
    const rows = index.searchBelow ? await index.searchBelow({ ...q, k }, min) : await index.search({ ...q, k });
    const below = rows.filter((r) => r.similarity < min && !shown.has(r.id)).slice(0, edge);
    if (below.length >= edge || rows.truncated !== true || k >= bound) return below;
  }
}

/** Band widths tried, at most: each try is one search (an exact scan on a LanceDB IVF index). */
const BAND_TRIES = 10;

/**
 * The `edge` lowest rows at or above `min`: of a band [min, min + δ) that holds ≥ edge rows and fits the bound,
 * δ bisected between a width known too narrow and one known too wide; the fullest complete band found when none
 * fits in BAND_TRIES searches (fewer rows then), [] when every band was over the bound.
 */
async function bandEdge(index: Index, q: SearchQuery, min: number, edge: number, bound: number) {
  let width = 0.01;
  let narrow = 0; // widths ≤ this held fewer than `edge` rows
  let wide = Infinity; // widths ≥ this held more than the bound
  let best: SearchResult[] = [];
  for (let i = 0; i < BAND_TRIES; i++) {
    const band = await index.searchBelow!({ ...q, minSimilarity: min, maxResults: bound }, min + width);
    if (band.truncated)
      wide = width; // its lowest rows were not all read
    else if (band.length >= edge || min + width >= 1) return band.slice(-edge);
    else {
      narrow = width;
      best = band;
    }
    width = wide === Infinity ? width * 4 : narrow === 0 ? width / 4 : (narrow + wide) / 2;
  }
  return best.slice(-edge);
}
