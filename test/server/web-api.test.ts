import { request } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadClipModel, type ClipModel } from '../../src/clip/index.js';
import { createFetcher, type Fetcher } from '../../src/fetch/index.js';
import { openIndex, type Index } from '../../src/index/index.js';
import { readTarSamples } from '../../src/io/tar-read.js';
import { readSpec, resolvePlan } from '../../src/select/index.js';
import { isLoopbackHost } from '../../src/server/access.js';
import { createServer, type ServerOptions } from '../../src/server/app.js';
import { solidImage } from '../clip/helpers.js';
import { tempDir } from '../helpers/tmp.js';
import { buildWebWorld, type WebWorld } from './../web/world.js';

let world: WebWorld;
let model: ClipModel;
let index: Index;
let fetcher: Fetcher;
const servers: { close(): Promise<unknown> }[] = [];

beforeAll(async () => {
  world = await buildWebWorld(240);
  model = await loadClipModel(world.modelDir);
  index = await openIndex(world.indexDir);
  fetcher = createFetcher({ allowPrivateNetworks: true, timeoutMs: 3000 });
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await fetcher.close();
  await model.close();
  index.close();
  await world.close();
});

/** A server over the world's index, listening on 127.0.0.1; `o` overrides its options. */
async function serve(o: Partial<ServerOptions> = {}): Promise<string> {
  const app = createServer({
    indices: new Map([['colours', index]]),
    model,
    fetcher,
    log: () => {},
    web: { indexDirs: new Map([['colours', world.indexDir]]), modelDir: world.modelDir, allowPrivateNetworks: true },
    ...o,
  });
  servers.push(app);
  return app.listen({ port: 0, host: '127.0.0.1' });
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function post(
  base: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Json }> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Json };
}

const dot = (a: Float32Array, b: ArrayLike<number>) => a.reduce((s, x, i) => s + x * b[i]!, 0);

let base = '';
beforeAll(async () => {
  base = await serve();
});

describe('/api/info, /api/search', () => {
  it('GET /api/info names the index with its folder and the model, and says whether streams may be started', async () => {
    const info = (await (await fetch(`${base}/api/info`)).json()) as Json;
    expect(info.indices).toEqual([
      expect.objectContaining({
        name: 'colours',
        location: world.indexDir,
        count: 240,
        dim: index.info.dim,
        columns: expect.objectContaining({ shade: 'int64' }),
      }),
    ]);
    expect(info.model).toEqual({ name: expect.any(String), location: world.modelDir });
    expect(info.allow_new_streams).toBe(false);
  });

  it('by text: the best k rows in descending similarity, with their metadata and the query vector', async () => {
    const { status, json } = await post(base, '/api/search', { index: 'colours', query: { text: 'red' }, k: 30 });
    expect(status).toBe(200);
    expect(json.results).toHaveLength(30);
    const sims = json.results.map((r: Json) => r.similarity);
    expect(sims).toEqual([...sims].sort((a, b) => b - a));
    expect(json.results[0]).toEqual(
      expect.objectContaining({
        id: expect.any(Number),
        url: expect.any(String),
        caption: expect.any(String),
        shade: expect.any(Number),
      }),
    );
    const red = (await model.encodeText(['red']))[0]!;
    expect(dot(red, json.vector)).toBeCloseTo(1, 5);
    // the reddest rows come first: shade 0 is pure red
    expect(json.results[0].shade).toBeLessThanOrEqual(json.results[29].shade);
  });

  it('by a row ("more like this"): the row\'s own stored embedding, so the row itself comes first', async () => {
    const { json } = await post(base, '/api/search', { index: 'colours', query: { like: 123 }, k: 5 });
    const stored = (await index.vectorsOf!([123])).get(123)!;
    expect(json.results[0].similarity).toBeCloseTo(1, 2);
    expect(json.results.some((r: Json) => r.id === 123)).toBe(true); // rows of the same shade tie with it
    expect(dot(stored, json.vector) / Math.sqrt(dot(stored, stored))).toBeCloseTo(1, 5);
  });

  it('"more like this" on an index whose backend keeps no embeddings is a 400 that says so', async () => {
    const { vectorsOf: _, ...withoutVectors } = index;
    const other = await serve({ indices: new Map([['colours', withoutVectors]]) });
    const res = await post(other, '/api/search', { index: 'colours', query: { like: 1 } });
    expect(res.status).toBe(400);
    expect(res.json.error).toBe(
      'index colours cannot give a row\'s embedding ("more like this"): its backend does not keep them',
    );
  });

  it('by an uploaded image (base64, a data: URL too) and by an embedding', async () => {
    const png = await solidImage([220, 30, 30], 'png', 32, 32);
    const byImage = await post(base, '/api/search', {
      index: 'colours',
      query: { image: `data:image/png;base64,${png.toString('base64')}` },
      k: 3,
    });
    expect(byImage.status).toBe(200);
    const byEmbedding = await post(base, '/api/search', {
      index: 'colours',
      query: { embedding: byImage.json.vector.map((x: number) => x * 3) },
      k: 3,
    });
    expect(byEmbedding.json.results.map((r: Json) => r.id)).toEqual(byImage.json.results.map((r: Json) => r.id)); // normalised
  });

  it('where is applied to the metadata, near-duplicates are dropped on request', async () => {
    const { json } = await post(base, '/api/search', {
      index: 'colours',
      query: { text: 'red' },
      k: 50,
      where: 'shade >= 50',
    });
    expect(json.results.length).toBeGreaterThan(0);
    expect(json.results.every((r: Json) => r.shade >= 50)).toBe(true);
    const all = await post(base, '/api/search', { index: 'colours', query: { text: 'red' }, k: 100 });
    const dedup = await post(base, '/api/search', {
      index: 'colours',
      query: { text: 'red' },
      k: 100,
      near_duplicate: true,
    });
    expect(dedup.json.results.length).toBeLessThan(all.json.results.length); // rows of one shade have one embedding
  });

  it.each([
    [
      { index: 'colours', query: { text: 'red', like: 3 } },
      400,
      /exactly one of text, image, image_url, embedding, like/,
    ],
    [{ index: 'colours', query: {} }, 400, /exactly one of/],
    [{ index: 'nope', query: { text: 'red' } }, 404, /unknown index "nope"; this server has: colours/],
    [{ index: 'colours', query: { text: 'red' }, k: 10_001 }, 400, /at most 10000 results/],
    [{ index: 'colours', query: { like: 100_000 } }, 400, /has no row 100000/],
    [{ index: 'colours', query: { embedding: [1, 2] } }, 400, /embedding has 2 dimensions but index colours has/],
    [
      { index: 'colours', query: { text: 'red' }, where: 'nonexistent > 3' },
      400,
      /cannot be applied.*Columns|cannot be applied/,
    ],
    [{ index: 'colours', query: { image: 'bm90IGFuIGltYWdl' } }, 400, /image: not a decodable image/],
    [{ index: 'colours', query: { text: 'red' }, extra: 1 }, 400, /Unknown option extra/],
  ])('bad request %j → %i', async (body, status, message) => {
    const res = await post(base, '/api/search', body);
    expect(res.status).toBe(status);
    expect(res.json.error).toMatch(message);
    expect(res.json.code).toMatch(/^[A-Z_]+$/);
  });
});

describe('/api/threshold', () => {
  /** Every row's similarity with the query, brute force over the index's stored vectors, best first. */
  async function similarities(text: string): Promise<{ id: number; similarity: number }[]> {
    const q = (await model.encodeText([text]))[0]!;
    const stored = await index.vectorsOf!([...world.rows.keys()]);
    return [...stored].map(([id, v]) => ({ id, similarity: dot(q, v) })).sort((a, b) => b.similarity - a.similarity);
  }

  it('counts the rows at or above the threshold and returns the rows just above and just below it', async () => {
    const all = await similarities('red');
    for (const at of [0.2, 0.5]) {
      const min = all[Math.floor(all.length * at)]!.similarity - 1e-4; // between two distinct rows' similarities
      const expected = all.filter((r) => r.similarity >= min);
      const { status, json } = await post(base, '/api/threshold', {
        index: 'colours',
        query: { text: 'red' },
        min_similarity: min,
        edge: 4,
      });
      expect(status).toBe(200);
      expect(json.count).toBe(expected.length);
      expect(json.more).toBe(false);
      expect(json.above).toHaveLength(4);
      expect(json.above.every((r: Json) => r.similarity >= min)).toBe(true);
      expect(json.above.at(-1).similarity).toBeCloseTo(expected.at(-1)!.similarity, 3); // the lowest above is the edge
      expect(json.below).toHaveLength(4);
      expect(json.below.every((r: Json) => r.similarity < min)).toBe(true);
      expect(json.below[0].similarity).toBeCloseTo(all[expected.length]!.similarity, 3); // the best below
    }
  });

  it('beyond the bound the count is N+ (more: true) and the edge is still the rows just above and just below', async () => {
    const all = await similarities('red');
    const min = all[Math.floor(all.length * 0.6)]!.similarity - 1e-4;
    const exact = (
      await post(base, '/api/threshold', { index: 'colours', query: { text: 'red' }, min_similarity: min, edge: 4 })
    ).json;
    expect(exact.count).toBeGreaterThan(20);
    const small = await serve({ limits: { results: 20 } });
    const { json } = await post(small, '/api/threshold', {
      index: 'colours',
      query: { text: 'red' },
      min_similarity: min,
      edge: 4,
    });
    expect(json).toEqual(expect.objectContaining({ count: 20, more: true }));
    const ids = (rows: Json[]) => rows.map((r) => r.id);
    expect(ids(json.above)).toEqual(ids(exact.above));
    expect(ids(json.below)).toEqual(ids(exact.below));
    expect(json.above).toHaveLength(4);
    expect(json.below).toHaveLength(4);
  });
});

describe('/thumbs/INDEX/ID.jpg', () => {
  const idOf = (fate: string) => world.rows.findIndex((r) => r.fate === fate);

  it('a live row: a small jpg, cached (the second request downloads nothing)', async () => {
    const id = idOf('ok');
    const res = await fetch(`${base}/thumbs/colours/${id}.jpg`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    expect(meta.format).toBe('jpeg');
    expect(Math.max(meta.width!, meta.height!)).toBeLessThanOrEqual(192);
    const before = world.server.totalRequests();
    expect((await fetch(`${base}/thumbs/colours/${id}.jpg`)).status).toBe(200);
    expect(world.server.totalRequests()).toBe(before);
  });

  it('a dead link and a web page are 502 IMAGE_UNAVAILABLE naming the failure, not a broken image', async () => {
    for (const [fate, reason] of [
      ['dead', 'http_404'],
      ['not_an_image', 'not_an_image'],
    ] as const) {
      const res = await fetch(`${base}/thumbs/colours/${idOf(fate)}.jpg`);
      expect(res.status).toBe(502);
      const body = (await res.json()) as Json;
      expect(body.code).toBe('IMAGE_UNAVAILABLE');
      expect(body.error).toContain(`dead link (${reason})`);
    }
  });

  it('the cache is bounded in bytes (a cache of 1 byte keeps nothing); dead links are not logged as server errors', async () => {
    const logs: string[] = [];
    const tiny = await serve({ limits: { thumbCacheBytes: 1 }, log: (line) => logs.push(line) });
    const id = world.rows.findIndex((r, i) => r.fate === 'ok' && i > 100);
    const before = world.server.totalRequests();
    for (let i = 0; i < 2; i++) expect((await fetch(`${tiny}/thumbs/colours/${id}.jpg`)).status).toBe(200);
    expect(world.server.totalRequests()).toBe(before + 2);
    expect((await fetch(`${tiny}/thumbs/colours/${idOf('dead')}.jpg`)).status).toBe(502);
    expect(logs).toEqual([]);
  });

  it('urls go through the SSRF guard: a server without --allow-private-networks does not fetch 127.0.0.1', async () => {
    const guarded = createFetcher({ timeoutMs: 3000 });
    const strict = await serve({ fetcher: guarded });
    const res = await fetch(`${strict}/thumbs/colours/${idOf('ok') + 7}.jpg`);
    expect(res.status).toBe(502);
    expect(((await res.json()) as Json).error).toContain('private_address');
    await guarded.close();
  });

  it('downloads at once are bounded; bad paths are 400/404', async () => {
    const bounded = await serve({ limits: { thumbFetches: 2 } });
    world.server.resetStats();
    const ids = world.rows.flatMap((r, id) => (r.fate === 'ok' ? [id] : [])).slice(20, 32);
    const statuses = await Promise.all(
      ids.map(async (id) => (await fetch(`${bounded}/thumbs/colours/${id}.jpg`)).status),
    );
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(world.server.peakInFlight).toBeLessThanOrEqual(2);
    expect((await fetch(`${base}/thumbs/nope/1.jpg`)).status).toBe(404);
    expect((await fetch(`${base}/thumbs/colours/x.jpg`)).status).toBe(400);
    expect((await fetch(`${base}/thumbs/colours/99999.jpg`)).status).toBe(404);
  });
});

describe('/api/plan and /api/streams', () => {
  const spec = (queries: Json[], extra: Json = {}) => ({
    index: world.indexDir,
    model: world.modelDir,
    queries,
    fetch: { allow_private_networks: true, timeout: 5, retries: 0 },
    image: { size: 32 },
    ...extra,
  });
  const twoQueries = [
    { name: 'red', text: 'red', count: 30, min_similarity: 0.9 },
    { name: 'orange', text: 'orange', count: 20, min_similarity: 0.8 },
  ];

  it('plan: what `clipstream plan` says of the same spec file, and how the queries overlap', async () => {
    const { status, json } = await post(base, '/api/plan', { spec: spec(twoQueries), partitions: 4 });
    expect(status).toBe(200);
    const file = join(await tempDir(), 'spec.json');
    await writeFile(file, JSON.stringify(spec(twoQueries)));
    const plan = await resolvePlan(await readSpec(file));
    expect(json.id).toBe(plan.header.id);
    expect(json.queries.map((q: Json) => [q.name, q.requested, q.available, q.planned, q.quota])).toEqual(
      plan.header.queries.map((q) => [q.name, q.requested, q.available, q.planned, Math.floor(q.requested / 4)]),
    );
    const [red, orange] = json.overlap as [Json, Json];
    expect(red.shared).toBeGreaterThan(0); // red and orange reach the same reddish-orange rows
    expect(red.with.orange).toBe(orange.with.red);
    expect(red.rows).toBeGreaterThanOrEqual(red.shared);
  });

  it.each([
    [
      () => ({ spec: { ...spec(twoQueries), index: '/somewhere/else' } }),
      /index: expected the folder of an index this server serves/,
    ],
    [
      () => ({ spec: spec([{ name: 'a', image: '/etc/passwd', count: 1 }]) }),
      /queries\[0\]\.image: a spec sent to the server takes text and embedding queries/,
    ],
    [
      () => ({ spec: spec(twoQueries, { cache: { dir: '/tmp/x' } }) }),
      /cache: a spec sent to the server may not name a folder/,
    ],
    [() => ({ spec: spec([{ name: 'a', text: 'red', count: 300_000 }]) }), /at most 200000/],
    [() => ({ spec: spec([{ name: 'a', text: 'red', count: 0 }]) }), /queries\[0\]\.count/],
    [() => ({ spec: { ...spec(twoQueries), model: '/other/model' } }), /model: expected this server's model/],
  ])('plan refuses %#', async (body, message) => {
    const res = await post(base, '/api/plan', body());
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(message);
  });

  it('starting a stream is refused unless the server allows it; then it is served, and the events show what was read', async () => {
    const refused = await post(base, '/api/streams', { name: 'mine', spec: spec(twoQueries) });
    expect(refused.status).toBe(403);
    expect(refused.json.hint).toContain('--allow-new-streams');
    const open = await serve({
      web: { indexDirs: new Map([['colours', world.indexDir]]), modelDir: world.modelDir, allowNewStreams: true },
    });
    const noPrivate = await post(open, '/api/streams', { name: 'mine', spec: spec(twoQueries) });
    expect(noPrivate.status).toBe(403); // the spec asks for private networks, the server was not started with them
    const started = await post(open, '/api/streams', {
      name: 'mine',
      spec: spec(twoQueries, { fetch: { allow_private_networks: false } }),
      partitions: 2,
    });
    expect(started.status).toBe(200);
    expect(started.json.url).toBe(`${open}/streams/mine/{0..1}.tar?partitions=2`);
    expect(started.json.python).toContain(`ClipStreamDataset("${open}", stream="mine"`);
    expect((await post(open, '/api/streams', { name: 'mine', spec: spec(twoQueries) })).status).toBe(400);
    const list = (await (await fetch(`${open}/streams`)).json()) as Json;
    expect(list.streams.map((s: Json) => s.name)).toEqual(['mine']);
  });
});

describe('/api/events', () => {
  /** Reads server-sent events until `until` accepts one; returns the events read. */
  async function readEvents(url: string, until: (e: { event: string; data: Json }) => boolean, ms = 5000) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), ms);
    const res = await fetch(url, { signal: controller.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const events: { event: string; data: Json }[] = [];
    let buffer = '';
    try {
      for await (const chunk of res.body!) {
        buffer += Buffer.from(chunk).toString('utf8');
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (data === undefined) continue;
          events.push({ event, data: JSON.parse(data) as Json });
          if (until(events.at(-1)!)) return events;
        }
      }
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
    return events;
  }

  it('a stream read by a client shows its counts per query and partition, its latest samples and rates, once a second', async () => {
    const open = await serve({
      web: {
        indexDirs: new Map([['colours', world.indexDir]]),
        modelDir: world.modelDir,
        allowNewStreams: true,
        allowPrivateNetworks: true,
      },
    });
    const spec = {
      index: world.indexDir,
      queries: [
        { name: 'red', text: 'red', count: 12, min_similarity: 0.9 },
        { name: 'yellow', text: 'yellow', count: 6, min_similarity: 0.8 },
      ],
      fetch: { allow_private_networks: true, retries: 0 },
      image: { size: 32 },
    };
    expect((await post(open, '/api/streams', { name: 'live', spec })).status).toBe(200);
    const tar = Buffer.from(await (await fetch(`${open}/streams/live/0.tar?partitions=2`)).arrayBuffer());
    const file = join(await tempDir(), 'p0.tar');
    await writeFile(file, tar);
    const got: Record<string, number> = {};
    for await (const s of readTarSamples(file)) {
      const q = (JSON.parse(String(s.json)) as Json).query as string;
      got[q] = (got[q] ?? 0) + 1;
    }
    expect(got).toEqual({ red: 6, yellow: 3 });
    const started = Date.now();
    const events = await readEvents(
      `${open}/api/events`,
      (e) => e.event === 'snapshot' && e.data.time * 1000 > started + 1500,
    );
    expect(events[0]!.event).toBe('history');
    const snapshots = events.filter((e) => e.event === 'snapshot');
    expect(snapshots.length).toBeGreaterThanOrEqual(2); // ≥ 1 a second
    const last = snapshots.at(-1)!.data;
    expect(last.rss).toBeGreaterThan(0);
    const job = last.jobs.find((j: Json) => j.name === 'live');
    expect(job).toEqual(expect.objectContaining({ kind: 'stream', delivered: 9, target: 18 }));
    expect(job.progress.queries).toEqual([
      { name: 'red', quota: 6, target: 12, delivered: 6 },
      { name: 'yellow', quota: 3, target: 6, delivered: 3 },
    ]);
    expect(job.progress.per_partition).toEqual([{ p: 0, epoch: 0, delivered: [6, 3] }]);
    expect(job.progress.recent).toHaveLength(9);
    const recent = job.progress.recent.at(-1);
    const image = await fetch(`${open}/streams/live/recent/${recent.key}.jpg`);
    expect(image.headers.get('content-type')).toBe('image/jpeg');
    expect(job.rate).toEqual(
      expect.objectContaining({ samples_per_second: expect.any(Number), bytes_per_second: expect.any(Number) }),
    );
  });

  it('clients are bounded', async () => {
    const one = await serve({ limits: { eventClients: 1 } });
    const controller = new AbortController();
    const first = await fetch(`${one}/api/events`, { signal: controller.signal });
    expect(first.status).toBe(200);
    const second = await fetch(`${one}/api/events`);
    expect(second.status).toBe(503);
    controller.abort();
  });
});

describe('access', () => {
  it("a POST to /api/ from another site is refused (a page elsewhere cannot start streams on 127.0.0.1); clip back's routes stay open to clip-front", async () => {
    const host = new URL(base).host;
    const body = { spec: { index: world.indexDir, queries: [{ name: 'a', text: 'red', count: 1 }] } };
    const cross = await post(base, '/api/plan', body, { origin: 'https://evil.example', 'content-type': 'text/plain' });
    expect(cross.status).toBe(403);
    expect(cross.json.error).toContain('from another site (https://evil.example) is refused');
    expect((await post(base, '/api/plan', body, { origin: `http://${host}` })).status).toBe(200);
    expect(
      (
        await post(
          base,
          '/knn-service',
          { indice_name: 'colours', text: 'red', num_images: 1 },
          { origin: 'https://rom1504.github.io' },
        )
      ).status,
    ).toBe(200);
  });

  it('without a token, a request naming another host is refused (DNS rebinding); loopback names are served', async () => {
    const port = Number(new URL(base).port);
    const get = (host: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/api/info', headers: { host } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    const rebound = await get(`attacker.example:${port}`);
    expect(rebound.status).toBe(403);
    expect(JSON.parse(rebound.body)).toMatchObject({ code: 'FORBIDDEN' });
    expect(rebound.body).toContain('attacker.example');
    expect(rebound.body).toContain('--token');
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'LOCALHOST', `127.1.2.3:${port}`])
      expect((await get(host)).status, host).toBe(200);
    expect((await get(`127.0.0.1.attacker.example:${port}`)).status).toBe(403);
    // the same test decides whether serve --host needs a token
    for (const host of ['::1', '127.0.0.1', 'localhost']) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', '127.0.0.1.example'])
      expect(isLoopbackHost(host), host).toBe(false);
  });

  const TOKEN = 'correct-horse-battery';
  let locked = '';
  beforeAll(async () => {
    locked = await serve({ token: TOKEN });
  });

  it.each(['/api/info', '/', '/thumbs/colours/1.jpg', '/streams', '/indices-list', '/metrics', '/api/events'])(
    'GET %s without the token is 401',
    async (path) => {
      const res = await fetch(locked + path);
      expect(res.status).toBe(401);
      expect(((await res.json()) as Json).code).toBe('UNAUTHORIZED');
    },
  );

  it('a wrong token is refused; Bearer, ?token= (which sets the cookie) and the cookie are accepted', async () => {
    expect((await fetch(`${locked}/api/info`, { headers: { authorization: 'Bearer wrong-token-here' } })).status).toBe(
      401,
    );
    expect((await fetch(`${locked}/api/info`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    const viaQuery = await fetch(`${locked}/api/info?token=${TOKEN}`);
    expect(viaQuery.status).toBe(200);
    const cookie = viaQuery.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^clipstream_token=correct-horse-battery; Path=\/; HttpOnly; SameSite=Strict$/);
    expect((await fetch(`${locked}/api/info`, { headers: { cookie: cookie.split(';')[0]! } })).status).toBe(200);
    expect((await post(locked, '/knn-service', { indice_name: 'colours', text: 'red', num_images: 1 })).status).toBe(
      401,
    );
    expect(
      (
        await post(
          locked,
          '/knn-service',
          { indice_name: 'colours', text: 'red', num_images: 1 },
          { authorization: `Bearer ${TOKEN}` },
        )
      ).status,
    ).toBe(200);
  });
});
