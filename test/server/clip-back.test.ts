import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadClipModel, writeColorClip, type ClipModel } from '../../src/clip/index.js';
import { downloadDemoShards } from '../helpers/demo-shards.js';
import { createFetcher, type Fetcher } from '../../src/fetch/index.js';
import { buildIndex, openIndex, openRemoteIndex, type Index } from '../../src/index/index.js';
import { runInference } from '../../src/inference/run.js';
import { createServer } from '../../src/server/app.js';
import { startImageServer, type ImageServer } from '../helpers/image-server.js';
import { request } from 'undici';
import { crc32 } from 'node:zlib';

let base: string;
let close: () => Promise<void>;
let images: ImageServer;
let model: ClipModel;
let index: Index;
let fetcher: Fetcher;
let red: number[];
const logs: string[] = [];

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'clipstream-serve-'));
  await downloadDemoShards(join(dir, 'demo'), 60);
  const modelDir = await writeColorClip(join(dir, 'model'));
  await runInference({ input: join(dir, 'demo', 'shards'), outputFolder: join(dir, 'emb'), model: modelDir });
  await buildIndex({ embeddings: join(dir, 'emb'), output: join(dir, 'idx') });
  index = await openIndex(join(dir, 'idx'));
  model = await loadClipModel(modelDir);
  red = [...(await model.encodeText(['red']))[0]!];
  images = await startImageServer();
  fetcher = createFetcher({ allowPrivateNetworks: true, timeoutMs: 3000 });
  const app = createServer({ indices: new Map([['demo', index]]), model, fetcher, log: (line) => logs.push(line) });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  close = async () => {
    await app.close();
    await fetcher.close();
    await images.close();
    await model.close();
    index.close();
  };
});
afterAll(() => close());

/** A result row or an error body, as JSON: the tests read fields by name. */
type Json = Record<string, unknown> & { error?: string; metadata?: Record<string, unknown> };

const post = async (path: string, body: unknown): Promise<{ status: number; json: Json[] & Json }> => {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Json[] & Json };
};

describe("clip back's API", () => {
  it('GET /indices-list', async () => {
    expect(await (await fetch(`${base}/indices-list`)).json()).toEqual(['demo']);
  });

  it('POST /knn-service by text: best first, metadata on the first num_images, ids only after', async () => {
    const { status, json } = await post('/knn-service', {
      text: 'red',
      modality: 'image',
      num_images: 3,
      num_result_ids: 6,
      indice_name: 'demo',
    });
    expect(status).toBe(200);
    expect(json).toHaveLength(6);
    expect(
      json.slice(0, 3).every((r: Json) => r.colour === 'red' && typeof r.url === 'string' && typeof r.id === 'number'),
    ).toBe(true);
    expect(Object.keys(json[4]!).sort()).toEqual(['id', 'similarity']);
    const sims = json.map((r: Json) => r.similarity);
    expect(sims).toEqual([...sims].sort((a, b) => Number(b) - Number(a)));
  });

  it('POST /knn-service by embedding_input, base64 image and image_url', async () => {
    const byEmbedding = await post('/knn-service', {
      embedding_input: red,
      modality: 'image',
      num_images: 2,
      indice_name: 'demo',
    });
    expect(byEmbedding.json.map((r: Json) => r.colour)).toEqual(['red', 'red']);
    const blue = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#0000ff' } })
      .png()
      .toBuffer();
    const byImage = await post('/knn-service', {
      image: blue.toString('base64'),
      modality: 'image',
      num_images: 2,
      indice_name: 'demo',
    });
    expect(byImage.json.map((r: Json) => r.colour)).toEqual(['blue', 'blue']);
    const byUrl = await post('/knn-service', {
      image_url: `${images.url}/img/50x50.jpg?color=00ff00`,
      modality: 'image',
      num_images: 1,
      indice_name: 'demo',
    });
    expect(byUrl.json[0]!.colour).toBe('green');
  });

  it('deduplicate drops near-duplicates (cosine ≥ 0.94): one image per colour here', async () => {
    const { json } = await post('/knn-service', {
      text: 'red',
      modality: 'image',
      num_images: 4,
      indice_name: 'demo',
      deduplicate: true,
    });
    const colours = json.map((r: Json) => r.colour);
    expect(colours[0]).toBe('red');
    expect(new Set(colours).size).toBe(colours.length);
  });

  it('modality text searches the caption embeddings', async () => {
    const { status, json } = await post('/knn-service', {
      text: 'yellow',
      modality: 'text',
      num_images: 2,
      indice_name: 'demo',
    });
    expect(status).toBe(200);
    expect(json.map((r: Json) => r.colour)).toEqual(['yellow', 'yellow']);
  });

  it('POST /metadata answers [{id, metadata}]', async () => {
    const { json } = await post('/metadata', { indice_name: 'demo', ids: [3, 1, 999999] });
    expect(json.map((r: Json) => r.id)).toEqual([3, 1]);
    expect(json[0]!.metadata).toMatchObject({ url: expect.any(String), caption: expect.any(String) });
  });

  it.each([
    [{ text: 'red', modality: 'image', indice_name: 'demo' }, /num_images/],
    [{ text: 'red', num_images: 2, indice_name: 'nope' }, /unknown indice_name "nope".*demo/],
    [
      { embedding_input: [1, 2, 3], num_images: 2, indice_name: 'demo' },
      /embedding_input has 3 dimensions but index demo has 64/,
    ],
    [{ num_images: 2, indice_name: 'demo' }, /exactly one of text, image, image_url, embedding_input; received none/],
    [{ text: 'red', image_url: 'http://x', num_images: 2, indice_name: 'demo' }, /received text, image_url/],
    [
      { text: 'red', num_images: 2, indice_name: 'demo', use_mclip: true },
      /use_mclip: this server has no multilingual CLIP/,
    ],
    [{ text: 'red', num_images: 20_000, indice_name: 'demo' }, /at most 10000 results per request, asked for 20000/],
    [{ text: 'red', num_images: 'ten', indice_name: 'demo' }, /num_images/],
    [{ image: '', num_images: 1, indice_name: 'demo' }, /image: expected base64/],
  ])('400 with a message naming the problem: %j', async (body, message) => {
    const { status, json } = await post('/knn-service', body);
    expect(status).toBe(400);
    expect(json.error).toMatch(message);
  });

  it("ClipClient's body: no Content-Type, nulls for the unused fields, its defaults (safety, violence, aesthetic 9) skipped and said", async () => {
    logs.length = 0;
    const body = {
      text: 'red',
      image: null,
      image_url: null,
      embedding_input: null,
      deduplicate: true,
      use_safety_model: true,
      use_violence_detector: true,
      indice_name: 'demo',
      use_mclip: false,
      aesthetic_score: 9,
      aesthetic_weight: 0.5,
      modality: 'image',
      num_images: 3,
      num_result_ids: 3,
    };
    for (let i = 0; i < 2; i++) {
      const res = await request(`${base}/knn-service`, { method: 'POST', body: JSON.stringify(body) }); // undici sends no content-type for a string
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-clipstream-skipped']).toBe('use_safety_model, use_violence_detector, aesthetic_score');
      const json = (await res.body.json()) as Json[];
      expect(json.map((r) => r.colour)).toEqual(['red', 'red', 'red'].slice(0, json.length));
      expect(json.length).toBeGreaterThan(0);
    }
    // said once per server, not per request
    expect(logs.filter((l) => /use_safety_model asked for and skipped/.test(l))).toHaveLength(1);
    expect(logs.filter((l) => /aesthetic_score asked for and skipped/.test(l))).toHaveLength(1);
  });

  it.each([
    ['application/xml', JSON.stringify({ text: 'red', num_images: 1, indice_name: 'demo' }), 200, /.*/],
    ['application/x-www-form-urlencoded', 'text=red&num_images=1', 400, /the body is not JSON/],
    ['text/xml', '<knn><text>red</text></knn>', 400, /the body is not JSON/],
    [
      'application/json',
      '{"embedding_input": [NaN, 1], "num_images": 1, "indice_name": "demo"}',
      400,
      /NaN or Infinity/,
    ],
  ])(
    'a body is read as JSON whatever its type (%s): JSON works, anything else is a 400',
    async (type, body, status, message) => {
      const res = await request(`${base}/knn-service`, { method: 'POST', headers: { 'content-type': type }, body });
      expect(res.statusCode).toBe(status);
      const json = (await res.body.json()) as Json;
      if (status === 400) expect(json.error).toMatch(message);
    },
  );

  it('non-finite embedding values are refused with the one message (1e999 parses to Infinity)', async () => {
    const values = Array.from({ length: 64 }, () => '0.1');
    values[5] = '1e999';
    const res = await request(`${base}/knn-service`, {
      method: 'POST',
      body: `{"embedding_input": [${values.join(',')}], "num_images": 1, "indice_name": "demo"}`,
    });
    expect(res.statusCode).toBe(400);
    expect(((await res.body.json()) as Json).error).toBe(
      'embedding_input: expected finite numbers but value 5 is Infinity',
    );
  });

  it('a pixel bomb (a ~110 KB PNG of 30000 × 30000) is refused from its header, before it is decoded', async () => {
    const bomb = Buffer.from(await (await fetch(`${images.url}/bomb.png`)).arrayBuffer());
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const before = process.memoryUsage().rss;
    for (const body of [{ image: bomb.toString('base64') }, { image_url: `${images.url}/bomb.png` }]) {
      const { status, json } = await post('/knn-service', { ...body, num_images: 1, indice_name: 'demo' });
      expect(status).toBe(400);
      expect(json.error).toMatch(/30000 × 30000, over the 100000000 pixels a query image may have/);
    }
    // 16000 × 16000 is under sharp's own limit (268 M pixels): 1.2 GB per request before the query limit
    const { status, json } = await post('/knn-service', {
      image: withPngSize(bomb, 16000, 16000).toString('base64'),
      num_images: 1,
      indice_name: 'demo',
    });
    expect(status).toBe(400);
    expect(json.error).toMatch(/16000 × 16000, over the 100000000 pixels/);
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024); // decoded, it would take 2.7 GB
  });

  it('GET /metrics in Prometheus format', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/clipstream_http_requests_total\{route="\/knn-service",status="200"\} \d+/);
    expect(text).toMatch(/process_cpu_user_seconds_total/);
  });
});

describe('bounded work per request', () => {
  let small: string;
  let stop: () => Promise<void>;
  const smallLogs: string[] = [];
  beforeAll(async () => {
    const app = createServer({
      indices: new Map([['demo', index]]),
      model,
      fetcher,
      log: (l) => smallLogs.push(l),
      limits: { bodyBytes: 64 * 1024, heavyRequests: 1, metadataIds: 100 },
    });
    small = await app.listen({ port: 0, host: '127.0.0.1' });
    stop = () => app.close();
  });
  afterAll(() => stop());

  it('a body over the limit is a 413, counted as 413 in /metrics (not 500)', async () => {
    const res = await request(`${small}/knn-service`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'x'.repeat(100_000), num_images: 1, indice_name: 'demo' }),
    });
    expect(res.statusCode).toBe(413);
    expect(((await res.body.json()) as Json).error).toMatch(/body/i);
    const metrics = await (await fetch(`${small}/metrics`)).text();
    expect(metrics).toMatch(/clipstream_http_requests_total\{route="\/knn-service",status="413"\} 1/);
    expect(metrics).not.toMatch(/status="500"/);
  });

  it('/metadata takes a bounded number of ids', async () => {
    const ids = Array.from({ length: 101 }, (_, i) => i);
    const res = await request(`${small}/metadata`, {
      method: 'POST',
      body: JSON.stringify({ indice_name: 'demo', ids }),
    });
    expect(res.statusCode).toBe(400);
    expect(((await res.body.json()) as Json).error).toBe('ids: at most 100 per request, received 101');
  });

  it('more heavy requests than the limit at once: 503 with Retry-After, and the first one still answers', async () => {
    const slow = request(`${small}/knn-service`, {
      method: 'POST',
      body: JSON.stringify({ image_url: `${images.url}/slow-first-byte?ms=1500`, num_images: 1, indice_name: 'demo' }),
    });
    await new Promise((r) => setTimeout(r, 300));
    const busy = await request(`${small}/knn-service`, {
      method: 'POST',
      body: JSON.stringify({ text: 'red', num_images: 1, indice_name: 'demo' }),
    });
    expect(busy.statusCode).toBe(503);
    expect(busy.headers['retry-after']).toBe('1');
    expect(((await busy.body.json()) as Json).error).toMatch(/1 search requests are running/);
    const first = await slow;
    expect(first.statusCode).toBe(200);
    expect((await first.body.json()) as Json[]).toHaveLength(1);
  });
});

describe('remote index (the same search interface over /knn-service)', () => {
  it('answers like the local index it serves', async () => {
    const remote = openRemoteIndex({ url: `${base}/knn-service`, indiceName: 'demo' });
    const vector = Float32Array.from(red);
    const local = await index.search({ vector, k: 5 });
    const far = await remote.search({ vector, k: 5 });
    expect(far.map((r) => r.id)).toEqual(local.map((r) => r.id));
    expect(far[0]!.similarity).toBeCloseTo(local[0]!.similarity, 5);
    const above = await remote.search({ vector, minSimilarity: 0.9 });
    expect(above.map((r) => r.id)).toEqual((await index.search({ vector, minSimilarity: 0.9 })).map((r) => r.id));
    expect(above.truncated).toBe(false);
    expect(await remote.getByIds([2])).toEqual(await index.getByIds([2]));
  });

  it('passes the server refusal on as QUERY_INVALID, and names an unreachable server', async () => {
    const remote = openRemoteIndex({ url: `${base}/knn-service`, indiceName: 'demo' });
    await expect(remote.search({ vector: new Float32Array(3) })).rejects.toMatchObject({
      code: 'QUERY_INVALID',
      message: expect.stringContaining('3 dimensions'),
    });
    await expect(remote.search({ vector: new Float32Array(64), where: 'x = 1' })).rejects.toMatchObject({
      code: 'QUERY_INVALID',
    });
    const gone = openRemoteIndex({ url: 'http://127.0.0.1:9/knn-service', indiceName: 'demo', timeoutMs: 2000 });
    await expect(gone.search({ vector: new Float32Array(64) })).rejects.toMatchObject({
      code: 'INDEX_INVALID',
      message: expect.stringContaining('127.0.0.1:9'),
    });
  });
});

/** The PNG with its IHDR rewritten to declare another size (CRC fixed): what a decompression bomb's header says. */
function withPngSize(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png);
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(crc32(out.subarray(12, 29)) >>> 0, 29);
  return out;
}
