import fc from 'fast-check';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadClipModel, type ClipModel } from '../../src/clip/index.js';
import { createFetcher, type Fetcher } from '../../src/fetch/index.js';
import { openIndex, type Index } from '../../src/index/index.js';
import { loadPlan } from '../../src/select/index.js';
import { createServer } from '../../src/server/app.js';
import { servedStream } from '../../src/server/streams.js';
import { createStreamContext } from '../../src/stream/index.js';
import { runs } from '../helpers/property.js';
import { streamWorld } from '../stream/world.js';

// For any body, query string or content type, the HTTP API answers a 2xx or a 4xx with a JSON error and a code:
// never a 500, never a hang, and the server keeps answering.

const world = streamWorld({ counts: { red: 40, blue: 40 }, deadFraction: 0.2 });
let base = '';
let stop: () => Promise<void> = async () => {};
const logs: string[] = [];

beforeAll(async () => {
  const w = world();
  const index: Index = await openIndex(w.indexDir);
  const model: ClipModel = await loadClipModel(w.modelDir);
  const fetcher: Fetcher = createFetcher({ allowPrivateNetworks: true, timeoutMs: 2000 });
  const plan = await loadPlan(await w.spec([{ name: 'red', count: 10 }]));
  const context = await createStreamContext(plan);
  const app = createServer({
    indices: new Map([['demo', index]]),
    model,
    fetcher,
    streams: new Map([['s', servedStream(plan, context)]]),
    log: (line) => logs.push(line),
    limits: { bodyBytes: 256 * 1024 },
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  stop = async () => {
    await app.close();
    await fetcher.close();
    await context.close();
    await model.close();
    index.close();
  };
}, 60_000);
afterAll(() => stop());

const number = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 64, 1e308, 2 ** 32 + 15, Number.MAX_SAFE_INTEGER),
);
const value = fc.oneof(
  number,
  fc.string({ maxLength: 40 }),
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue({ maxDepth: 3 }),
);
const vector = fc.oneof(
  fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 64, maxLength: 64 }),
  fc.array(number, { maxLength: 70 }),
  value,
);

const knnBody = fc.record(
  {
    indice_name: fc.oneof(fc.constant('demo'), value),
    num_images: fc.oneof(fc.integer({ min: 1, max: 50 }), value),
    num_result_ids: fc.oneof(fc.integer({ min: 1, max: 50 }), value),
    modality: fc.oneof(fc.constantFrom('image', 'text'), value),
    text: fc.oneof(fc.constantFrom('red', 'blue', ''), value),
    image: fc.oneof(fc.base64String({ maxLength: 200 }), value),
    image_url: fc.oneof(fc.constant('http://127.0.0.1:9/x.jpg'), value),
    embedding_input: vector,
    deduplicate: value,
    use_safety_model: value,
    use_violence_detector: value,
    use_mclip: value,
    aesthetic_score: value,
    aesthetic_weight: value,
  },
  { requiredKeys: [] },
);
const apiBody = fc.record(
  {
    index: fc.oneof(fc.constant('demo'), value),
    text: fc.oneof(fc.constantFrom('red', 'blue'), value),
    embedding: vector,
    id: value,
    ids: fc.oneof(fc.array(fc.integer({ min: -5, max: 200 }), { maxLength: 20 }), value),
    k: value,
    min_similarity: value,
    threshold: value,
    where: fc.oneof(fc.constantFrom("colour = 'red'", 'nope = 1', "'; DROP TABLE samples; --"), value),
    dedup: value,
    spec: value,
    name: value,
  },
  { requiredKeys: [] },
);
const contentType = fc.constantFrom(
  undefined,
  'application/json',
  'text/plain',
  'application/xml',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=latin1',
);
const rawBody = fc.oneof(
  knnBody.map((b) => JSON.stringify(b)),
  apiBody.map((b) => JSON.stringify(b)),
  fc.string({ maxLength: 200 }),
  fc.constantFrom(
    '',
    'null',
    '[]',
    '{"a":',
    '{"embedding_input": [NaN]}',
    '\u0000\u0001',
    '{"__proto__": {"x": 1}}',
    '9'.repeat(400),
  ),
);
const postRoute = fc.constantFrom(
  '/knn-service',
  '/metadata',
  '/api/search',
  '/api/threshold',
  '/api/plan',
  '/api/streams',
  '/indices-list',
  '/nope',
);
const getPath = fc.oneof(
  fc.constantFrom(
    '/indices-list',
    '/streams',
    '/streams/s/info',
    '/streams/s/stats',
    '/streams/nope/0.tar',
    '/thumbs/demo/0.jpg',
    '/thumbs/demo/-1.jpg',
    '/thumbs/nope/1.jpg',
    '/api/info',
    '/metrics',
    '/',
    '/assets/../../package.json',
  ),
  fc
    .record({
      p: fc.string({ maxLength: 6 }),
      P: fc.string({ maxLength: 12 }),
      epoch: fc.string({ maxLength: 12 }),
      state: fc.string({ maxLength: 60 }),
    })
    .map(
      ({ p, P, epoch, state }) =>
        `/streams/s/${encodeURIComponent(p)}.tar?partitions=${encodeURIComponent(P)}&epoch=${encodeURIComponent(epoch)}&state=${encodeURIComponent(state)}`,
    ),
  fc.webPath().map((p) => `/streams/s${p}`),
);

/** What the web did, not us: a row's dead link (thumbnails), a partition whose candidates all failed. */
const UPSTREAM = new Set(['IMAGE_UNAVAILABLE', 'STREAM_EXHAUSTED']);

/** The answer: a 2xx, a 4xx, or a 502 that blames the web; errors are JSON with a message and a code. */
async function answer(method: 'GET' | 'POST', path: string, body?: string, type?: string): Promise<void> {
  const headers: Record<string, string> = type === undefined ? {} : { 'content-type': type };
  const res = await request(base + path, { method, body, headers, headersTimeout: 10_000, bodyTimeout: 10_000 });
  if (res.statusCode >= 200 && res.statusCode < 300 && String(res.headers['content-type']).includes('x-tar')) {
    await res.body.dump(); // a stream: the answer is fine, its content is the stream tests' business
    return;
  }
  const text = await res.body.text();
  const what = `${method} ${path} ${body?.slice(0, 200) ?? ''} → ${res.statusCode} ${text.slice(0, 300)}`;
  if (res.statusCode < 400) return;
  const json = JSON.parse(text) as { error?: unknown; code?: unknown };
  expect(typeof json.error, what).toBe('string');
  expect(typeof json.code, what).toBe('string');
  if (res.statusCode >= 500) expect(res.statusCode === 502 && UPSTREAM.has(json.code as string), what).toBe(true);
}

describe('the HTTP API under arbitrary input', () => {
  it('POST bodies of any shape and content type: never a 500', async () => {
    await fc.assert(
      fc.asyncProperty(postRoute, rawBody, contentType, (route, body, type) => answer('POST', route, body, type)),
      { numRuns: runs(400) },
    );
    expect(logs.filter((l) => /internal error/.test(l))).toEqual([]);
  });

  it('GET paths and query strings of any shape: never a 500', async () => {
    await fc.assert(
      fc.asyncProperty(getPath, (path) => answer('GET', path)),
      { numRuns: runs(300) },
    );
    expect(logs.filter((l) => /internal error/.test(l))).toEqual([]);
  });
});
