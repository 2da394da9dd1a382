import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import type { ClipModel } from '../clip/index.js';
import { inputMalformed, isClipstreamError, notFound, serverBusy, type ClipstreamError } from '../core/errors.js';
import type { Fetcher } from '../fetch/index.js';
import type { Index } from '../index/index.js';
import { registerAccessCheck, registerHostCheck, registerOriginCheck } from './access.js';
import { registerClipBackRoutes } from './clip-back.js';
import { registerEvents } from './events.js';
import { registerPage } from './page.js';
import { publicMessage } from './public-message.js';
import { registerStreamRoutes, type ServedStream } from './streams.js';
import { registerThumbRoutes } from './thumbs.js';
import { registerWebApi, type WebOptions } from './web-api.js';

export interface ServerLimits {
  /** Largest request body, in bytes (base64 images in /knn-service): beyond it, 413. */
  bodyBytes: number;
  /** /knn-service and /metadata requests running at once: beyond it, 503 with Retry-After. */
  heavyRequests: number;
  /** Ids one /metadata request may ask for (clip-front asks for 40 at a time). */
  metadataIds: number;
  /** Results one /knn-service request may ask for (num_images, num_result_ids). */
  results: number;
  /** Pixels of a query image (image, image_url), checked from its header before it is decoded. */
  queryImagePixels: number;
  /** Bytes of thumbnails kept in memory (/thumbs), failures included. */
  thumbCacheBytes: number;
  /** Thumbnails downloaded at once; more wait, and beyond `thumbQueue` waiting, 503 + Retry-After. */
  thumbFetches: number;
  thumbQueue: number;
  /** Clients of /api/events at once: beyond it, 503. */
  eventClients: number;
  /** Streams started through POST /api/streams. */
  startedStreams: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  bodyBytes: 32 * 1024 * 1024,
  heavyRequests: 8,
  metadataIds: 10_000,
  results: 10_000,
  queryImagePixels: 100_000_000,
  thumbCacheBytes: 64 * 1024 * 1024,
  thumbFetches: 16,
  thumbQueue: 512,
  eventClients: 64,
  startedStreams: 16,
};

export interface ServerOptions {
  indices: Map<string, Index>;
  /** Embeds `text` / `image` / `image_url` queries; without it only `embedding_input` is accepted. */
  model?: ClipModel;
  /** Downloads `image_url` queries (with the SSRF guard of src/fetch). */
  fetcher: Fetcher;
  /** Streams served as webdataset tars per partition (docs/streaming.md). */
  streams?: Map<string, ServedStream>;
  limits?: Partial<ServerLimits>;
  /** Where the server tells what it did not do or what failed; default: stderr. */
  log?: (line: string) => void;
  /** Asked of every request, page and API alike, when set (src/server/access.ts). */
  token?: string;
  /** The page's side (src/server/web-api.ts): folders, POST /api/streams, dashboards of other jobs. */
  web?: WebOptions;
}

/** What the routes share: the options with every default filled in, and the app's log. */
export interface ServerContext extends Omit<ServerOptions, 'limits' | 'log'> {
  limits: ServerLimits;
  log: (line: string) => void;
  /** Logs a line once per server (what a request asked for and was skipped, …). */
  logOnce: (line: string) => void;
  registry: Registry;
  /** Runs a search, embedding or metadata read within the limit of heavy requests at once (503 beyond it). */
  bounded: <T>(work: () => Promise<T>) => Promise<T>;
  /** Every stream served, those started from the page included. */
  streams: Map<string, ServedStream>;
  web: WebOptions;
}

/**
 * `clipstream serve`'s HTTP app: clip back's API, the stream routes, /metrics. Bodies are JSON whatever their
 * Content-Type (clip back reads them with `get_json(force=True)`; ClipClient sends none). Every error goes through
 * one handler that takes the HTTP status from the error catalogue; a bug is a 500 that says "please report".
 */
export function createServer(o: ServerOptions): FastifyInstance {
  const limits = { ...DEFAULT_LIMITS, ...o.limits };
  const log = o.log ?? ((line: string) => process.stderr.write(`clipstream serve: ${line}\n`));
  const logged = new Set<string>();
  const registry = new Registry();
  const ctx: ServerContext = {
    ...o,
    limits,
    log,
    registry,
    logOnce: (line) => !logged.has(line) && logged.add(line) && log(line),
    bounded: boundedRunner(limits.heavyRequests),
    streams: o.streams ?? new Map(),
    web: o.web ?? {},
  };

  const app = Fastify({ logger: false, bodyLimit: limits.bodyBytes });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => {
    try {
      done(null, parseJsonBody(body as Buffer));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'clipstream_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['route', 'status'],
    registers: [registry],
  });
  app.addHook('onResponse', async (req, reply) => {
    requests.inc({ route: req.routeOptions.url ?? 'unknown', status: String(reply.statusCode) });
  });
  app.setNotFoundHandler((req) => {
    throw notFound(`no route ${req.method} ${req.url.split('?')[0]}`, { hint: 'docs/server.md lists the routes.' });
  });
  app.setErrorHandler((err: FastifyError | ClipstreamError, req, reply) => {
    const { status, body } = errorReply(err);
    // a dead link's thumbnail is the web's doing, not the server's: the page shows it, the log would drown
    if (status >= 500 && body.code !== 'IMAGE_UNAVAILABLE')
      log(
        `${req.method} ${req.url.split('?')[0]}: ${status === 500 ? 'internal error: ' : ''}${(err as Error).message}${status === 500 && err.stack ? `\n${err.stack}` : ''}`,
      );
    if (isClipstreamError(err) && err.code === 'SERVER_BUSY') void reply.header('retry-after', '1');
    return reply.code(status).send(body);
  });
  app.get('/metrics', async (_req, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });

  if (o.token !== undefined) registerAccessCheck(app, o.token);
  else registerHostCheck(app);
  registerOriginCheck(app);
  registerClipBackRoutes(app, ctx);
  registerStreamRoutes(app, ctx);
  registerWebApi(app, ctx);
  registerThumbRoutes(app, ctx);
  registerEvents(app, ctx);
  registerPage(app);
  return app;
}

/** Bounds the requests that search, embed or read metadata at once; beyond it, 503 + Retry-After. */
function boundedRunner(max: number): <T>(work: () => Promise<T>) => Promise<T> {
  let running = 0;
  return async (work) => {
    if (running >= max)
      throw serverBusy(`${running} search requests are running, the most this server takes at once`, {
        hint: 'Retry after a second.',
      });
    running++;
    try {
      return await work();
    } finally {
      running--;
    }
  };
}

/** JSON.parse with messages for what Python's json.dumps writes and JSON does not allow (NaN, Infinity). */
function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  const text = body.toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    if (/(?<![\w"])-?(NaN|Infinity)(?![\w"])/.test(text)) {
      throw inputMalformed(
        "the body holds NaN or Infinity (Python's json.dumps writes them; JSON has no such numbers)",
        {
          hint: 'An embedding with NaN or infinite values matches nothing: recompute it.',
        },
      );
    }
    throw inputMalformed(`the body is not JSON: ${(err as Error).message}`);
  }
}

/** The status and JSON body for an error: ours from the catalogue, fastify's 4xx as they are, the rest a 500. */
export function errorReply(err: FastifyError | ClipstreamError): {
  status: number;
  body: { error: string; code: string; hint?: string };
} {
  if (isClipstreamError(err) && err.kind !== 'bug') {
    return {
      status: err.statusCode,
      body: {
        error: publicMessage(err.message),
        code: err.code,
        ...(err.hint ? { hint: publicMessage(err.hint) } : {}),
      },
    };
  }
  const status = (err as FastifyError).statusCode;
  if (!isClipstreamError(err) && status !== undefined && status >= 400 && status < 500) {
    return { status, body: { error: publicMessage(err.message), code: (err as FastifyError).code ?? 'BAD_REQUEST' } };
  }
  return {
    status: 500,
    body: {
      error: 'internal error: this is a bug in clipstream, please report it (the server log has the details)',
      code: 'INTERNAL',
    },
  };
}

/**
 * The index a request names, or the error that lists what this server has: clip back's routes answer a bad
 * `indice_name` as clip back does (QUERY_INVALID, 400), the page's routes a missing resource (NOT_FOUND, 404).
 */
export function indexNamed(
  ctx: ServerContext,
  name: string,
  { field = 'index', error = notFound }: { field?: string; error?: typeof notFound } = {},
): Index {
  const index = ctx.indices.get(name);
  if (!index)
    throw error(
      `unknown ${field} ${JSON.stringify(name)}; this server has: ${[...ctx.indices.keys()].join(', ') || 'no index'}`,
    );
  return index;
}
