import type { FastifyInstance, FastifyReply } from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import { isClipstreamError } from '../core/errors.js';
import type { Plan } from '../select/index.js';
import { createTarSampleStream } from '../sink/index.js';
import type { CandidateContext } from '../stream/candidate.js';
import { checkPartition, parseState, quotas, streamPartition, StreamStats, toRecord, type StreamState } from '../stream/index.js';

/** A stream served over HTTP: its plan, the fetcher/cache its partitions share, and its live stats. */
export interface ServedStream {
  plan: Plan;
  context: CandidateContext;
  stats: StreamStats;
}

export function servedStream(plan: Plan, context: CandidateContext): ServedStream {
  return { plan, context, stats: new StreamStats() };
}

const MAX_PARTITIONS = 100_000;

/**
 * The stream endpoints of docs/streaming.md: one webdataset tar per partition, chunked and back-pressured (the
 * engine awaits the tar stream, which awaits the socket), with resume state as a parameter; live stats; metrics.
 */
export function registerStreamRoutes(app: FastifyInstance, registry: Registry, streams: Map<string, ServedStream>): void {
  const fail = (reply: FastifyReply, status: number, error: string) => reply.code(status).send({ error });
  const named = (name: string, reply: FastifyReply): ServedStream | undefined => {
    const s = streams.get(name);
    if (!s) void fail(reply, 404, `unknown stream ${JSON.stringify(name)}; this server streams: ${[...streams.keys()].join(', ') || 'nothing'}`);
    return s;
  };
  const partitionsOf = (query: Record<string, string | undefined>): number | string => {
    const raw = query.partitions ?? '1';
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < 1 || n > MAX_PARTITIONS) return `partitions: expected an integer in 1…${MAX_PARTITIONS} but received ${JSON.stringify(raw)}`;
    return n;
  };

  app.get('/streams', async () => ({
    streams: [...streams].map(([name, s]) => ({ name, id: s.plan.header.id, seed: s.plan.header.seed, queries: s.plan.header.queries, warnings: s.plan.warnings })),
  }));

  app.get<{ Params: { name: string }; Querystring: Record<string, string> }>('/streams/:name/info', async (req, reply) => {
    const s = named(req.params.name, reply);
    if (!s) return reply;
    const P = partitionsOf(req.query);
    if (typeof P === 'string') return fail(reply, 400, P);
    const q = quotas(s.plan, P);
    const per = q.reduce((a, b) => a + b, 0);
    return { partitions: P, samples_per_partition: per, total: per * P, queries: s.plan.header.queries.map((x, i) => ({ name: x.name, quota: q[i] })) };
  });

  app.get<{ Params: { name: string } }>('/streams/:name/stats', async (req, reply) => {
    const s = named(req.params.name, reply);
    if (!s) return reply;
    return { name: req.params.name, ...s.stats.snapshot(), cache: s.context.cache?.stats() ?? null };
  });

  app.get<{ Params: { name: string; file: string }; Querystring: Record<string, string> }>('/streams/:name/:file', async (req, reply) => {
    const s = named(req.params.name, reply);
    if (!s) return reply;
    const match = /^(\d{1,6})\.tar$/.exec(req.params.file);
    if (!match) return fail(reply, 404, `expected /streams/${req.params.name}/{partition}.tar but received ${req.params.file}`);
    const P = partitionsOf(req.query);
    if (typeof P === 'string') return fail(reply, 400, P);
    const epochRaw = req.query.epoch ?? '0';
    if (!/^\d{1,9}$/.test(epochRaw)) return fail(reply, 400, `epoch: expected an integer ≥ 0 but received ${JSON.stringify(epochRaw)}`);
    let stream;
    try {
      const partition = { index: Number(match[1]), count: P };
      checkPartition(partition);
      const state: StreamState | undefined = req.query.state === undefined ? undefined : parseState(req.query.state, 'state');
      const infinite = req.query.infinite === '1' || req.query.infinite === 'true';
      stream = streamPartition(s.plan, { partition, epoch: Number(epochRaw), state, context: s.context, stats: s.stats, infinite });
    } catch (err) {
      if (isClipstreamError(err)) return fail(reply, 400, err.message);
      throw err;
    }
    const tar = createTarSampleStream();
    const stopped = () => {
      void stream.close();
    };
    req.raw.once('close', stopped);
    void (async () => {
      try {
        for await (const sample of stream) await tar.writeSample(toRecord(sample, true));
        await tar.finish();
      } catch (err) {
        // Cut the response without the end-of-archive blocks: the reader sees a truncated tar, not a short one.
        tar.destroy(err as Error);
        req.log.warn({ err }, 'stream failed');
        reply.raw.destroy();
      } finally {
        req.raw.off('close', stopped);
      }
    })();
    return reply
      .header('content-type', 'application/x-tar')
      .header('x-clipstream-samples', Number.isFinite(stream.remaining) ? String(stream.remaining) : 'infinite')
      .header('cache-control', 'no-store')
      .send(tar.readable);
  });

  const gauge = (name: string, help: string, read: (s: ServedStream) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['stream'],
      registers: [registry],
      collect() {
        for (const [stream, s] of streams) this.set({ stream }, read(s));
      },
    });
  gauge('clipstream_stream_samples_delivered', 'Samples delivered', (s) => s.stats.delivered);
  gauge('clipstream_stream_samples_per_second', 'Samples delivered per second since the server started', (s) => s.stats.snapshot().samples_per_second);
  gauge('clipstream_stream_attempts', 'Download attempts (cache hits included)', (s) => s.stats.attempts);
  gauge('clipstream_stream_success_rate', 'Successful attempts / attempts', (s) => s.stats.snapshot().success_rate ?? 0);
  gauge('clipstream_stream_bytes', 'Encoded image bytes delivered', (s) => s.stats.bytes);
  gauge('clipstream_stream_cache_hits', 'Samples served from the cache', (s) => s.stats.cacheHits);
  gauge('clipstream_stream_repeats', 'Samples delivered again because a stripe ran dry', (s) => s.stats.repeats);
  gauge('clipstream_stream_active_partitions', 'Partitions being streamed', (s) => s.stats.activePartitions);
  new Gauge({
    name: 'clipstream_stream_failures',
    help: 'Failed attempts by reason',
    labelNames: ['stream', 'reason'],
    registers: [registry],
    collect() {
      for (const [stream, s] of streams) for (const [reason, n] of s.stats.reasons) this.set({ stream, reason }, n);
    },
  });
}
