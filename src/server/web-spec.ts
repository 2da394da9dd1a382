import { resolve } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { forbidden, invalidOption, queryInvalid } from '../core/errors.js';
import { parseOptions } from '../core/validation.js';
import type { Index } from '../index/search.js';
import { embedQuery } from '../select/query-embedding.js';
import { openPlan, resolvePlan, type Plan } from '../select/plan.js';
import { parseSpec, type Spec } from '../select/spec.js';
import { MAX_PARTITIONS, quotas } from '../stream/partition.js';
import type { ServerContext } from './app.js';
import { sameLocation } from './indices-paths.js';
import { openServedStream } from './streams.js';
import type { PlanAnswer, StartAnswer } from './wire.js';

const API_HINT = "The page's JSON API: see docs/server.md; a spec's fields: docs/spec.md.";
/**
 * Samples one spec from the page may ask for: its plan (~3.75 candidates a sample) is searched and written to the
 * server's disk by one request; larger plans are for `clipstream plan`.
 */
export const MAX_PAGE_SPEC_SAMPLES = 200_000;

const planShape = z
  .object({
    spec: z.record(z.string(), z.unknown()),
    partitions: z.number().int().min(1).max(MAX_PARTITIONS).default(1),
  })
  .strict();
const startShape = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'Expected a name of letters, digits, _ or - (1–64 characters)'),
    spec: z.record(z.string(), z.unknown()),
    partitions: z.number().int().min(1).max(MAX_PARTITIONS).default(1),
  })
  .strict();

/**
 * `POST /api/plan` (what `clipstream plan` would say of a spec, and how its queries overlap, without downloading
 * anything) and `POST /api/streams` (serve a new stream; only with `--allow-new-streams`). A spec from the page is
 * the file `clipstream plan` reads, with what a client may not make the server touch refused: its index must be one
 * this server serves, its model the server's, and no query image, embedding file or cache folder (server paths).
 */
export function registerSpecRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const contexts: { close(): Promise<void> }[] = [];
  app.addHook('onClose', async () => {
    for (const c of contexts) await c.close();
  });

  app.post('/api/plan', async (req) => {
    const body = parseOptions(planShape, req.body ?? {}, undefined, API_HINT);
    const { spec, index } = specFromPage(body.spec, ctx, false);
    return ctx.bounded(async (): Promise<PlanAnswer> => {
      const plan = await resolvePlan(spec, { model: ctx.model });
      try {
        return { ...planSummary(plan, body.partitions), overlap: await overlaps(spec, index, ctx) };
      } finally {
        await plan.close?.();
      }
    });
  });

  app.post('/api/streams', async (req) => {
    if (!ctx.web.allowNewStreams)
      throw forbidden('this server does not start streams from its API', {
        hint: 'Restart it with --allow-new-streams, or run `clipstream serve --spec NAME=SPEC` with the exported spec.',
      });
    const body = parseOptions(startShape, req.body ?? {}, undefined, API_HINT);
    if (ctx.streams.has(body.name))
      throw invalidOption(`name: this server already serves a stream ${JSON.stringify(body.name)}`, {
        hint: 'Choose another name.',
      });
    if (contexts.length >= ctx.limits.startedStreams)
      throw forbidden(`this server has started ${contexts.length} streams, the most it starts`, {
        hint: 'Restart the server to start more.',
      });
    const { spec } = specFromPage(body.spec, ctx, true);
    const plan = await ctx.bounded(() => openPlan(spec, { model: ctx.model }));
    const { stream, context } = await openServedStream(body.name, plan, (level, line) => ctx.log(`${level}: ${line}`));
    contexts.push(context);
    ctx.streams.set(body.name, stream);
    ctx.log(`stream ${body.name} started from the API`);
    const answer: StartAnswer = {
      name: body.name,
      ...streamUsage(req, body.name, body.partitions),
      ...planSummary(plan, body.partitions),
    };
    return answer;
  });
}

/** The spec as `clipstream plan` would read it, checked against what this server serves; `index`: the served index. */
function specFromPage(
  input: Record<string, unknown>,
  ctx: ServerContext,
  downloads: boolean,
): { spec: Spec; index: Index } {
  const dirs = [...(ctx.web.indexDirs ?? [])];
  const location = typeof input.index === 'string' ? input.index : undefined;
  const served = location === undefined ? undefined : dirs.find(([, dir]) => sameLocation(dir, location));
  if (!served)
    throw invalidOption(
      `index: expected the folder of an index this server serves (${dirs.map(([, d]) => d).join(', ') || 'none'}) but received ${JSON.stringify(input.index)}`,
      { hint: "GET /api/info lists each index's location." },
    );
  if (input.model !== undefined && (!ctx.web.modelDir || resolve(String(input.model)) !== resolve(ctx.web.modelDir))) {
    throw invalidOption(
      `model: expected this server's model (${ctx.web.modelDir ?? 'none: it has no --model'}) but received ${JSON.stringify(input.model)}`,
    );
  }
  if (input.cache !== undefined)
    throw invalidOption('cache: a spec sent to the server may not name a folder of the server', {
      hint: 'Add a cache to the exported file instead.',
    });
  const queries = Array.isArray(input.queries) ? input.queries : [];
  queries.forEach((q: unknown, i) => {
    for (const field of ['image', 'embedding_file'] as const) {
      if (q && typeof q === 'object' && field in q)
        throw invalidOption(`queries[${i}].${field}: a spec sent to the server takes text and embedding queries`, {
          hint: 'The page sends an image query as its embedding.',
        });
    }
  });
  const spec = parseSpec(input, 'the spec', process.cwd());
  const samples = spec.queries.reduce((sum, q) => sum + q.count, 0);
  if (samples > MAX_PAGE_SPEC_SAMPLES)
    throw invalidOption(
      `the spec asks for ${samples} samples; a spec sent to the server may ask for at most ${MAX_PAGE_SPEC_SAMPLES}`,
      { hint: 'Export the spec and run `clipstream plan` on it.' },
    );
  if (downloads && spec.fetch.allow_private_networks && !ctx.web.allowPrivateNetworks) {
    throw forbidden(
      'fetch.allow_private_networks: this server was not started with --allow-private-networks, so its streams may not reach private addresses',
    );
  }
  return { spec, index: ctx.indices.get(served[0])! };
}

/** `clipstream plan`'s table: per query requested, available (`+`: more qualify), planned, and what P partitions deliver. */
export function planSummary(plan: Plan, partitions: number): PlanAnswer {
  const quota = quotas(plan, partitions);
  return {
    id: plan.header.id,
    partitions,
    queries: plan.header.queries.map((q, i) => ({
      name: q.name,
      requested: q.requested,
      available: q.available,
      available_more: q.available_more,
      planned: q.planned,
      quota: quota[i]!,
      delivered: quota[i]! * partitions,
    })),
    per_partition: quota.reduce((a, b) => a + b, 0),
    total: quota.reduce((a, b) => a + b, 0) * partitions,
    warnings: plan.warnings,
  };
}

/**
 * Per query, how many of its rows (at or above its threshold, matching its where; the first `results` of them)
 * other queries also reach: with dedup, such a row goes to the query it is most similar to.
 */
async function overlaps(spec: Spec, index: Index, ctx: ServerContext) {
  const sets: { ids: Set<number>; more: boolean }[] = [];
  for (const q of spec.queries) {
    if (q.text !== undefined && !ctx.model)
      throw queryInvalid(`query ${q.name}: a text query needs the server's model (--model)`);
    const vector = await embedQuery(q, ctx.model, `query ${q.name}`);
    const rows = await index.search({
      vector,
      minSimilarity: q.min_similarity,
      maxResults: ctx.limits.results,
      where: q.where,
      dedupUrls: spec.dedup.urls,
    });
    sets.push({ ids: new Set(rows.map((r) => r.id)), more: rows.truncated === true });
  }
  return spec.queries.map((q, i) => {
    const withOthers: Record<string, number> = {};
    const shared = new Set<number>();
    spec.queries.forEach((other, j) => {
      if (j === i) return;
      let n = 0;
      for (const id of sets[i]!.ids) {
        if (!sets[j]!.ids.has(id)) continue;
        n++;
        shared.add(id);
      }
      if (n > 0) withOthers[other.name] = n;
    });
    return { name: q.name, rows: sets[i]!.ids.size, rows_more: sets[i]!.more, shared: shared.size, with: withOthers };
  });
}

/** Where a client reads the stream, and the Python lines that train on it. */
function streamUsage(req: FastifyRequest, name: string, partitions: number) {
  const base = `${req.protocol}://${req.headers.host ?? 'localhost'}`;
  const token = req.headers.authorization !== undefined || /clipstream_token=/.test(req.headers.cookie ?? '');
  return {
    url: `${base}/streams/${name}/{0..${partitions - 1}}.tar?partitions=${partitions}`,
    python: [
      ...(token ? ['import os'] : []),
      'from clipstream import ClipStreamDataset',
      'from torch.utils.data import DataLoader',
      `dataset = ClipStreamDataset("${base}", stream="${name}", decode="tensor"${token ? ', token=os.environ["CLIPSTREAM_TOKEN"]' : ''})`,
      'loader = DataLoader(dataset, batch_size=32, num_workers=2)',
      'for batch in loader: ...',
    ].join('\n'),
  };
}
