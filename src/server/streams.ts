import { warnWhenResolved, type Tell } from '../select/plan-warnings.js';
import type { FastifyInstance } from 'fastify';
import { Gauge } from 'prom-client';
import { invalidOption, notFound } from '../core/errors.js';
import type { Plan } from '../select/index.js';
import type { CandidateContext } from '../stream/candidate.js';
import { createStreamContext } from '../stream/api.js';
import {
  checkPartition,
  MAX_PARTITIONS,
  parseState,
  quotas,
  streamPartition,
  StreamStats,
  type StreamState,
} from '../stream/index.js';
import { partitionTar } from '../stream/tar-writer.js';
import type { ServerContext } from './app.js';
import { StreamProgress } from './stream-progress.js';

/** A stream served over HTTP: its plan, the fetcher/cache its partitions share, and its live stats. */
export interface ServedStream {
  plan: Plan;
  context: CandidateContext;
  stats: StreamStats;
  /** Per partition and query, and the latest samples: what the dashboard shows. */
  progress: StreamProgress;
}

export function servedStream(plan: Plan, context: CandidateContext): ServedStream {
  return { plan, context, stats: new StreamStats(), progress: new StreamProgress() };
}

/**
 * A stream to serve, with the fetcher and cache it owns (close the context when the server stops). From a spec it
 * is served from each query's first block on while the long search runs (as `clipstream stream`); the plan's
 * warnings, and a failure of the long search, are told through `tell` when it ends.
 */
export async function openServedStream(
  name: string,
  plan: Plan,
  tell: Tell,
): Promise<{ stream: ServedStream; context: { close(): Promise<void> } }> {
  warnWhenResolved(plan, `stream ${name}: `, tell);
  const context = await createStreamContext(plan);
  const close = async () => {
    await context.close();
    await plan.close?.(); // a plan resolved here lives in a temporary folder
  };
  return { stream: servedStream(plan, context), context: { close } };
}

/**
 * How long a partition request waits for its first sample before the tar starts: a partition that fails at once
 * (no candidate, every host refused) gets an HTTP error with the reasons instead of an empty tar.
 */
const FIRST_SAMPLE_WAIT_MS = 2000;

type Query = Record<string, string | undefined>;

function partitionsOf(query: Query): number {
  const raw = query.partitions ?? '1';
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > MAX_PARTITIONS)
    throw invalidOption(`partitions: expected an integer in 1…${MAX_PARTITIONS} but received ${JSON.stringify(raw)}`);
  return n;
}

function epochOf(query: Query): number {
  const raw = query.epoch ?? '0';
  if (!/^\d{1,9}$/.test(raw)) throw invalidOption(`epoch: expected an integer ≥ 0 but received ${JSON.stringify(raw)}`);
  return Number(raw);
}

/**
 * The stream endpoints of docs/streaming.md: one webdataset tar per partition, chunked and back-pressured (the
 * engine awaits the tar stream, which awaits the socket), with resume state as a parameter; live stats; metrics.
 * A partition that fails after its tar started ends with `__error__.json` (see stream/tar-writer.ts); the log
 * says so either way.
 */
export function registerStreamRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const streams = ctx.streams;
  const streamNamed = (name: string): ServedStream => {
    const s = streams.get(name);
    if (!s)
      throw notFound(
        `unknown stream ${JSON.stringify(name)}; this server streams: ${[...streams.keys()].join(', ') || 'nothing'}`,
      );
    return s;
  };

  app.get('/streams', async () => ({
    streams: [...streams].map(([name, s]) => ({
      name,
      id: s.plan.header.id,
      seed: s.plan.header.seed,
      queries: s.plan.header.queries,
      warnings: s.plan.warnings,
    })),
  }));

  app.get<{ Params: { name: string }; Querystring: Query }>('/streams/:name/info', async (req) => {
    const s = streamNamed(req.params.name);
    const P = partitionsOf(req.query);
    const q = quotas(s.plan, P);
    const per = q.reduce((a, b) => a + b, 0);
    return {
      partitions: P,
      samples_per_partition: per,
      total: per * P,
      queries: s.plan.header.queries.map((x, i) => ({ name: x.name, quota: q[i] })),
    };
  });

  app.get<{ Params: { name: string } }>('/streams/:name/stats', async (req) => {
    const s = streamNamed(req.params.name);
    return { name: req.params.name, ...s.stats.snapshot(), cache: s.context.cache?.stats() ?? null };
  });

  registerRecentSamples(app, streamNamed);

  app.get<{ Params: { name: string; file: string }; Querystring: Query }>(
    '/streams/:name/:file',
    async (req, reply) => {
      const name = req.params.name;
      const s = streamNamed(name);
      const match = /^(\d{1,6})\.tar$/.exec(req.params.file);
      if (!match) throw notFound(`expected /streams/${name}/{partition}.tar but received ${req.params.file}`);
      const partition = { index: Number(match[1]), count: partitionsOf(req.query) };
      checkPartition(partition);
      const state: StreamState | undefined =
        req.query.state === undefined ? undefined : parseState(req.query.state, 'state');
      const infinite = req.query.infinite === '1' || req.query.infinite === 'true';
      const stream = streamPartition(s.plan, {
        partition,
        epoch: epochOf(req.query),
        state,
        context: s.context,
        stats: s.stats,
        infinite,
      });
      const what = `stream ${name} partition ${partition.index} of ${partition.count}`;
      const announced = Number.isFinite(stream.remaining) ? String(stream.remaining) : 'infinite'; // before the first sample is taken
      let left = false;
      const onClose = () => {
        left = true;
        void stream.close();
      };
      req.raw.once('close', onClose);
      let tar;
      try {
        tar = await partitionTar(stream, {
          firstSampleWaitMs: FIRST_SAMPLE_WAIT_MS,
          onSample: (sample) => s.progress.record(sample),
          onError: (err) => left || ctx.log(`${what} failed: ${describe(err)}`),
        });
      } catch (err) {
        req.raw.off('close', onClose);
        ctx.log(`${what} could not start: ${describe(err)}`);
        throw err;
      }
      void tar.done.catch(() => {}).finally(() => req.raw.off('close', onClose));
      return reply
        .header('content-type', 'application/x-tar')
        .header('x-clipstream-samples', announced)
        .header('cache-control', 'no-store')
        .send(tar.readable);
    },
  );

  registerStreamMetrics(ctx, streams);
}

/** `/streams/NAME/recent/KEY.jpg`: one of the latest samples' images (the dashboard's strip). */
function registerRecentSamples(app: FastifyInstance, streamNamed: (name: string) => ServedStream): void {
  app.get<{ Params: { name: string; key: string } }>('/streams/:name/recent/:key', async (req, reply) => {
    const m = /^([A-Za-z0-9_]{1,64})\.(jpg|png|webp)$/.exec(req.params.key);
    const hit = m ? streamNamed(req.params.name).progress.recentImage(m[1]!) : undefined;
    if (!hit)
      throw notFound(
        `no recent sample ${req.params.key} in stream ${req.params.name}: only the latest samples are kept`,
      );
    return reply
      .type(`image/${hit.format === 'jpg' ? 'jpeg' : hit.format}`)
      .header('cache-control', 'private, max-age=3600')
      .send(hit.image);
  });
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string; hint?: string };
  return `${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}${e.hint ? ` (${e.hint})` : ''}`;
}

function registerStreamMetrics(ctx: ServerContext, streams: Map<string, ServedStream>): void {
  const gauge = (name: string, help: string, read: (s: ServedStream) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['stream'],
      registers: [ctx.registry],
      collect() {
        for (const [stream, s] of streams) this.set({ stream }, read(s));
      },
    });
  gauge('clipstream_stream_samples_delivered', 'Samples delivered', (s) => s.stats.delivered);
  gauge(
    'clipstream_stream_samples_per_second',
    'Samples delivered per second since the server started',
    (s) => s.stats.snapshot().samples_per_second,
  );
  gauge('clipstream_stream_attempts', 'Download attempts (cache hits included)', (s) => s.stats.attempts);
  gauge(
    'clipstream_stream_success_rate',
    'Successful attempts / attempts',
    (s) => s.stats.snapshot().success_rate ?? 0,
  );
  gauge('clipstream_stream_bytes', 'Encoded image bytes delivered', (s) => s.stats.bytes);
  gauge('clipstream_stream_cache_hits', 'Samples served from the cache', (s) => s.stats.cacheHits);
  gauge('clipstream_stream_repeats', 'Samples delivered again because a stripe ran dry', (s) => s.stats.repeats);
  gauge('clipstream_stream_active_partitions', 'Partitions being streamed', (s) => s.stats.activePartitions);
  new Gauge({
    name: 'clipstream_stream_failures',
    help: 'Failed attempts by reason',
    labelNames: ['stream', 'reason'],
    registers: [ctx.registry],
    collect() {
      for (const [stream, s] of streams) for (const [reason, n] of s.stats.reasons) this.set({ stream, reason }, n);
    },
  });
}
