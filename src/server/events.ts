import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { serverBusy } from '../core/errors.js';
import type { ServerContext } from './app.js';
import type { ServedStream } from './streams.js';
import type { EventsSnapshot, JobCounters, RatePoint } from './wire.js';

export type { JobCounters } from './wire.js';

/**
 * Dashboards of other jobs in this process, read once a second: a download's (src/cli/download.ts's `--port`), or
 * the runs of a queue, which come and go (`jobs status --port`, `serve --queue`).
 */
export type JobSource = () => JobCounters[];

/** A minute and a half of history per job at one point a second: what a chart opened late still shows. */
const HISTORY_POINTS = 90;
const TICK_MS = 1000;
/** A client that has not taken this much of what was sent is skipped until it catches up. */
const SLOW_CLIENT_BYTES = 1024 * 1024;

function streamCounters(name: string, s: ServedStream): JobCounters {
  const snap = s.stats.snapshot();
  const progress = s.progress.snapshot(s.plan);
  return {
    name,
    kind: 'stream',
    delivered: snap.delivered,
    target: progress.queries.reduce((sum, q) => sum + q.target, 0),
    attempts: snap.attempts,
    successes: snap.successes,
    failures: snap.failures,
    reasons: snap.reasons,
    repeats: snap.repeats,
    bytes: snap.bytes,
    cache_hits: snap.cache_hits,
    cache_misses: snap.cache_misses,
    active_partitions: snap.active_partitions,
    progress,
  };
}

/**
 * `GET /api/events`: server-sent events, one `snapshot` a second with every job's counters, rates and the server's
 * RSS. One ticker for the whole server reads the counters once and writes the same text to every client, so many
 * clients cost one snapshot and a write each; a client whose socket is full is skipped, and at most
 * `limits.eventClients` are served at once. A new client gets the rate history first (`event: history`).
 */
export function registerEvents(app: FastifyInstance, ctx: ServerContext): void {
  const clients = new Set<ServerResponse>();
  const history = new Map<string, RatePoint[]>();
  const last = new Map<string, { at: number; delivered: number; bytes: number | null }>();
  let snapshot = '';

  const jobs = (): JobCounters[] => [
    ...[...ctx.streams].map(([name, s]) => streamCounters(name, s)),
    ...(ctx.web.jobs ?? []).flatMap((read) => read()),
  ];

  function tick(): void {
    const now = Date.now();
    const list = jobs();
    const rates = list.map((job) => {
      const prev = last.get(job.name);
      last.set(job.name, { at: now, delivered: job.delivered, bytes: job.bytes });
      const seconds = prev ? Math.max(1e-3, (now - prev.at) / 1000) : 1;
      const point: RatePoint = {
        t: now / 1000,
        samples_per_second: prev ? round((job.delivered - prev.delivered) / seconds) : 0,
        bytes_per_second:
          job.bytes === null ? null : prev?.bytes != null ? round((job.bytes - prev.bytes) / seconds) : 0,
      };
      const points = history.get(job.name) ?? [];
      points.push(point);
      if (points.length > HISTORY_POINTS) points.shift();
      history.set(job.name, points);
      return point;
    });
    // jobs that are gone (a queued run removed from Redis) take their history with them
    const present = new Set(list.map((job) => job.name));
    for (const name of [...history.keys()]) if (!present.has(name)) history.delete(name);
    for (const name of [...last.keys()]) if (!present.has(name)) last.delete(name);
    const message: EventsSnapshot = {
      time: now / 1000,
      rss: process.memoryUsage.rss(),
      jobs: list.map((job, i) => ({ ...job, rate: rates[i]! })),
    };
    snapshot = JSON.stringify(message);
    for (const res of clients)
      if (res.writableLength < SLOW_CLIENT_BYTES) res.write(`event: snapshot\ndata: ${snapshot}\n\n`);
  }
  // Always on (history for a dashboard opened later); costs one read of the counters a second.
  const timer = setInterval(tick, TICK_MS);
  timer.unref();
  // preClose: an open event stream would otherwise keep app.close() waiting for ever
  app.addHook('preClose', async () => {
    clearInterval(timer);
    for (const res of clients) res.end();
  });

  app.get('/api/events', async (req, reply) => {
    if (clients.size >= ctx.limits.eventClients)
      throw serverBusy(`${clients.size} dashboards are open, the most this server serves at once`, {
        hint: 'Close a dashboard, or retry later.',
      });
    const res = reply.raw;
    reply.hijack();
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 2000\nevent: history\ndata: ${JSON.stringify(Object.fromEntries(history))}\n\n`);
    clients.add(res);
    if (snapshot) res.write(`event: snapshot\ndata: ${snapshot}\n\n`);
    else tick();
    req.raw.once('close', () => clients.delete(res));
  });
}

const round = (x: number) => Math.round(x * 100) / 100;
