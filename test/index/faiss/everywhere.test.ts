/**
 * A clip-retrieval / LAION faiss folder wherever an index is taken: a spec's `index:` (a folder and the same folder
 * over HTTP), `clipstream query --index`, `clipstream serve`'s routes, planned and streamed end to end against the
 * test image server (the fixture's metadata is rewritten so that its urls point there).
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createFetcher } from '../../../src/fetch/index.js';
import { indexKindAt, openIndexAt } from '../../../src/index/open-backend.js';
import type { Index } from '../../../src/index/search.js';
import { candidatesOf, readSpec, resolvePlan, type Plan } from '../../../src/select/index.js';
import { createServer } from '../../../src/server/app.js';
import { readIndicesPaths } from '../../../src/server/indices-paths.js';
import { openStream, type StreamSample } from '../../../src/stream/index.js';
import { startImageServer, type ImageServer } from '../../helpers/image-server.js';
import { serveFolder, type RangeServer } from '../../helpers/range-server.js';
import { tempDir } from '../../helpers/tmp.js';
import { answers, faissFixtures, FIXTURE_TIMEOUT_MS, type FaissAnswers } from './fixtures.js';
import { isDead, laionSpec, laionWorld, type LaionWorld } from './laion-world.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';

let dir: string;
let fixtures: string;
let images: ImageServer;
let http: RangeServer;
let world: LaionWorld;
let expected: FaissAnswers;

beforeAll(async () => {
  fixtures = await faissFixtures();
  dir = await mkdtemp(join(tmpdir(), 'clipstream-faiss-everywhere-'));
  images = await startImageServer();
  world = await laionWorld(fixtures, images, dir);
  http = await serveFolder(dir);
  expected = await answers(fixtures, 'ondisk');
}, FIXTURE_TIMEOUT_MS);

afterAll(async () => {
  await http?.close();
  await images?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const q0 = () => [...world.queries.slice(0, 64)];
/** A similarity between the n-th and the (n+1)-th best of query 0 (a spec scales its embedding to unit length again). */
const between = (n: number) => (expected.top300.distances[0]![n]! + expected.top300.distances[0]![n + 1]!) / 2;
const folderUrl = () => `${http.base}/laion`;

async function drain(stream: AsyncIterable<StreamSample>): Promise<StreamSample[]> {
  const out: StreamSample[] = [];
  for await (const s of stream) out.push(s);
  return out;
}

describe('the index kind is detected from what is there', () => {
  it('a faiss folder, its URL, an empty folder and a missing one', async () => {
    expect(await indexKindAt(world.folder)).toBe('faiss');
    expect(await indexKindAt(folderUrl())).toBe('faiss');
    const empty = await tempDir();
    await expect(indexKindAt(empty)).rejects.toMatchObject({
      code: 'INDEX_INVALID',
      message: expect.stringMatching(
        /is not an index folder: it has no clipstream\.json .* and no image\.index or index-parts/,
      ),
    });
    await expect(indexKindAt(join(empty, 'nope'))).rejects.toMatchObject({ code: 'INPUT_NOT_FOUND' });
  });
});

describe('a spec over a faiss folder, planned and streamed', () => {
  // The 100 best rows of query 0 are above this similarity (faiss's own top-300, nprobe 16 from image.json).
  const threshold = () => between(99);
  const best = (n: number) => expected.top300.ids[0]!.slice(0, n);
  const opened: Plan[] = [];
  afterEach(async () => {
    for (const p of opened.splice(0)) await p.close?.();
  });

  async function plan(index: string, extra: Record<string, unknown> = {}): Promise<Plan> {
    const spec = await laionSpec(
      dir,
      index,
      [{ name: 'q0', embedding: q0(), count: 30, min_similarity: threshold() }],
      extra,
    );
    const planned = await resolvePlan(await readSpec(spec), { firstBlock: 20 });
    opened.push(planned);
    return planned;
  }

  it('plans the rows at or above min_similarity (faiss range search), the best count × oversample kept', async () => {
    const local = await plan(world.folder);
    expect(local.header.index).toMatchObject({ location: world.folder, count: 12_000, dim: 64 });
    expect(local.header.queries[0]).toMatchObject({ available: 100, available_more: false, planned: 90 });
    const [candidates] = await candidatesOf(local);
    const ids = candidates!.map((c) => c.id);
    expect(new Set(ids.slice(0, 20))).toEqual(new Set(best(20))); // the first block: the 20 best
    expect(new Set(ids)).toEqual(new Set(best(90)));
    const c = candidates![0]!;
    expect(c).toMatchObject({ url: world.urls[c.id], caption: `row ${c.id}`, metadata: { width: 40 } });
  });

  it('the same folder over HTTP gives the same candidates in the same order', async () => {
    const local = await plan(world.folder);
    const remote = await plan(folderUrl());
    expect(remote.header.index.location).toBe(folderUrl());
    const ids = async (p: Plan) => (await candidatesOf(p))[0]!.map((c) => c.id);
    expect(await ids(remote)).toEqual(await ids(local));
  });

  it.each([
    ['a folder', () => world.folder],
    ['a URL', folderUrl],
  ])('streams exact counts from %s, dead links replaced from the stripe', async (_what, index) => {
    const planned = await plan(index());
    const stream = await openStream(planned, { partition: { index: 1, count: 2 } });
    const samples = await drain(stream);
    expect(samples).toHaveLength(15);
    const allowed = new Set((await candidatesOf(planned))[0]!.filter((_, i) => i % 2 === 1).map((c) => c.id));
    for (const s of samples) {
      expect(allowed.has(s.json.id as number)).toBe(true);
      expect(isDead(s.json.id as number)).toBe(false);
      expect(s.json.url).toBe(world.urls[s.json.id as number]);
    }
    expect(new Set(samples.map((s) => s.json.id)).size).toBe(15);
  });

  it('where is refused on a faiss index, naming the query and why', async () => {
    const spec = await laionSpec(dir, world.folder, [
      { name: 'wide', embedding: q0(), count: 5, min_similarity: threshold(), where: 'width > 30' },
    ]);
    await expect(resolvePlan(await readSpec(spec))).rejects.toMatchObject({
      code: 'QUERY_INVALID',
      message: expect.stringMatching(
        /^query wide: where "width > 30" cannot be applied to the faiss index .*: faiss has no metadata filter, and filtering its results afterwards would return fewer rows than asked/,
      ),
      hint: expect.stringMatching(/Remove where .* or build a clipstream index/),
    });
  });

  it('a faiss folder without metadata is refused: its rows have no urls to download', async () => {
    const bare = join(dir, 'bare');
    await mkdir(bare, { recursive: true });
    const { cp } = await import('node:fs/promises');
    await cp(join(fixtures, 'folders/wide/image.index'), join(bare, 'image.index'));
    const spec = await laionSpec(dir, bare, [{ name: 'q', embedding: q0(), count: 5 }]);
    await expect(resolvePlan(await readSpec(spec))).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringMatching(/has no url column/),
    });
  });
});

describe("a folder built by autofaiss (clip-retrieval index's image.index + image.json), and its URL", () => {
  let auto: LaionWorld;
  let autoAnswers: FaissAnswers;
  beforeAll(async () => {
    auto = await laionWorld(fixtures, images, dir, 'autofaiss', 'auto');
    autoAnswers = await answers(fixtures, 'autofaiss');
  });

  it.each([
    ['its folder', () => auto.folder],
    ['its URL', () => `${http.base}/auto`],
  ])('query, plan and stream over %s', async (_what, index) => {
    const run = promisify(execFile);
    const { stdout } = await run(process.execPath, [
      resolve('dist/cli/main.js'),
      'query',
      '--index',
      index(),
      '--embedding-file',
      auto.queryNpy,
      '--format',
      'jsonl',
    ]);
    expect(
      stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { id: number }).id),
    ).toEqual(autoAnswers.top10.ids[0]);
    const d = autoAnswers.top300.distances[0]!;
    const spec = await laionSpec(dir, index(), [
      { name: 'q0', embedding: q0(), count: 20, min_similarity: (d[79]! + d[80]!) / 2 },
    ]);
    const planned = await resolvePlan(await readSpec(spec), { firstBlock: 16 });
    expect(planned.header.queries[0]).toMatchObject({ available: 80, planned: 60 });
    const [candidates] = await candidatesOf(planned);
    expect(new Set(candidates!.map((c) => c.id))).toEqual(new Set(autoAnswers.top300.ids[0]!.slice(0, 60)));
    const samples = await drain(await openStream(planned));
    expect(samples).toHaveLength(20);
    for (const s of samples) expect(s.json.url).toBe(auto.urls[s.json.id as number]);
    await planned.close?.();
  });
});

describe('clipstream query --index DIR|URL', () => {
  const run = promisify(execFile);
  it.each([
    ['a folder', () => world.folder],
    ['a URL', folderUrl],
  ])('prints faiss top-k of %s as jsonl', async (_what, index) => {
    const { stdout } = await run(process.execPath, [
      resolve('dist/cli/main.js'),
      'query',
      '--index',
      index(),
      '--embedding-file',
      world.queryNpy,
      '--num-results',
      '10',
      '--format',
      'jsonl',
    ]);
    const rows = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: number; similarity: number; url: string });
    expect(rows.map((r) => r.id)).toEqual(expected.top10.ids[0]);
    rows.forEach((r, i) => expect(r.similarity).toBeCloseTo(expected.top10.distances[0]![i]!, 4));
    expect(rows[0]!.url).toBe(world.urls[rows[0]!.id]);
  });

  it('--where is refused with why and what to do (exit status 2), nothing printed', async () => {
    const args = ['query', '--index', world.folder, '--embedding-file', world.queryNpy, '--where', 'width > 30'];
    const err = await run(process.execPath, [resolve('dist/cli/main.js'), ...args]).catch(
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(err).toMatchObject({ code: 2, stdout: '' });
    expect((err as { stderr: string }).stderr).toMatch(
      /where "width > 30" cannot be applied .* faiss has no metadata filter[^]*Remove where/,
    );
  });
});

describe('clipstream plan over a faiss URL', () => {
  it('logs each stage of the long search off a terminal, then the table and a closing summary', async () => {
    // Every row of the 16 probed lists (several hundred): more than the first block, so the long search runs.
    const spec = await laionSpec(dir, folderUrl(), [{ name: 'q0', embedding: q0(), count: 300, min_similarity: -1 }]);
    const out = join(dir, 'plan-cli');
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [
      resolve('dist/cli/main.js'),
      'plan',
      spec,
      '--output',
      out,
    ]);
    const header = JSON.parse(await readFile(join(out, 'plan.json'), 'utf8')) as {
      id: string;
      queries: { available: number; planned: number }[];
    };
    const { available, planned } = header.queries[0]!;
    expect(planned).toBeGreaterThan(512);
    const n = (x: number) => x.toLocaleString('en-US');
    expect(stderr).toMatch(
      new RegExp(`^plan: searching q0: ${n(available)} rows found, searched 16/16 \\(100 %\\), \\d+\\.\\d s$`, 'm'),
    );
    expect(stderr).toMatch(/^plan: dedup across queries: 1\/1 buckets \(100 %\), [\d,]+ rows, \d+\.\d s$/m);
    expect(stderr).toMatch(new RegExp(`^plan: writing q0: ${n(planned - 512)} candidates of at most 388 `, 'm'));
    expect(stdout).toMatch(
      new RegExp(
        `^plan ${header.id} written to ${out} in [\\d.]+s: ${n(planned)} candidates for 1 query ` +
          `\\(${n(available)} rows found\\), [\\d.]+ MB on disk, [\\d,]+ candidates/s, peak memory \\d+ MB$`,
        'm',
      ),
    );
  });
});

describe('clipstream serve over a faiss folder', () => {
  let base: string;
  let close: () => Promise<void>;
  let index: Index;
  beforeAll(async () => {
    ({ index } = await openIndexAt(folderUrl(), { columns: ['url', 'caption'] }));
    const fetcher = createFetcher({ allowPrivateNetworks: true });
    const app = createServer({
      indices: new Map([['laion', index]]),
      fetcher,
      log: () => {},
      web: { indexDirs: new Map([['laion', folderUrl()]]) },
    });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    close = async () => {
      await app.close();
      await fetcher.close();
      index.close();
    };
  });
  afterAll(() => close());

  const post = async (path: string, body: unknown) => {
    const res = await fetch(base + path, { method: 'POST', body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown>[] & Record<string, unknown> };
  };

  it("searchBelow: faiss's ranking from a similarity down (the page's threshold edge beyond the result bound)", async () => {
    const vector = Float32Array.from(q0());
    const ids = expected.top300.ids[0]!;
    const below = await index.searchBelow!({ vector, k: 5 }, between(9));
    expect(below.map((r) => r.id)).toEqual(ids.slice(10, 15));
    expect(below.every((r) => Object.keys(r).sort().join() === 'caption,id,similarity,url')).toBe(true);
    const band = await index.searchBelow!({ vector, minSimilarity: between(19), maxResults: 100 }, between(9));
    expect(band.map((r) => r.id)).toEqual(ids.slice(10, 20));
    expect(band.truncated).toBe(false);
  });

  it("/knn-service answers faiss's top-k with the columns to return; /metadata the rows", async () => {
    const { status, json } = await post('/knn-service', {
      embedding_input: q0(),
      num_images: 10,
      num_result_ids: 12,
      indice_name: 'laion',
    });
    expect(status).toBe(200);
    expect(json.map((r) => r.id)).toEqual(expected.top300.ids[0]!.slice(0, 12));
    expect(Object.keys(json[0]!).sort()).toEqual(['caption', 'id', 'similarity', 'url']);
    expect(Object.keys(json[11]!).sort()).toEqual(['id', 'similarity']);
    const meta = await post('/metadata', { indice_name: 'laion', ids: [7, 7001] });
    expect(meta.json).toEqual([
      { id: 7, metadata: { url: world.urls[7], caption: 'row 7' } },
      { id: 7001, metadata: { url: world.urls[7001], caption: 'row 7001' } },
    ]);
  });

  it('/api/info describes it; "more like this" works on a row a search returned, is a 400 that says why on another', async () => {
    const info = (await (await fetch(`${base}/api/info`)).json()) as { indices: Record<string, unknown>[] };
    expect(info.indices[0]).toMatchObject({
      name: 'laion',
      location: folderUrl(),
      count: 12_000,
      dim: 64,
      columns: { url: 'string', caption: 'string' },
      has_text: false,
    });
    const like = await post('/api/search', { index: 'laion', query: { like: 5 } });
    expect(like.status).toBe(400);
    expect(like.json.error).toMatch(/\(.*IVF.*\) cannot give row 5's embedding .* no id → list map/);
    const found = (await post('/api/search', { index: 'laion', query: { embedding: q0() }, k: 8 })).json as unknown as {
      results: { id: number }[];
    };
    const row = found.results[3]!.id;
    const more = await post('/api/search', { index: 'laion', query: { like: row }, k: 5 });
    expect(more.status).toBe(200);
    expect((more.json as unknown as { results: { id: number }[] }).results[0]!.id).toBe(row); // itself first
  });

  it('a search with where is a 400 that says why and what to do, not fewer rows', async () => {
    const res = await post('/api/search', { index: 'laion', query: { embedding: q0() }, where: 'width > 30' });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/where "width > 30" cannot be applied .* fewer rows than asked/);
  });

  it('/api/plan plans a spec over it (the page names the index by its location)', async () => {
    const { status, json } = await post('/api/plan', {
      spec: {
        index: folderUrl(),
        queries: [{ name: 'q0', embedding: q0(), count: 10, min_similarity: between(49) }],
      },
    });
    expect(status).toBe(200);
    expect(json.queries).toMatchObject([{ name: 'q0', available: 50, planned: 30 }]);
  });
});

describe("clip back's indices_paths.json", () => {
  it("takes clip back's keys: the meaningful ones used, the others reported once, unknown ones refused", async () => {
    const d = await tempDir();
    const file = join(d, 'indices_paths.json');
    await writeFile(
      file,
      JSON.stringify({
        laion: {
          indice_folder: 'laion5B',
          columns_to_return: ['url', 'caption'],
          use_arrow: true,
          enable_faiss_memory_mapping: true,
          clip_model: 'ViT-L/14',
          provide_safety_model: true,
        },
        other: { indice_folder: 'https://host/h14', clip_model: 'open_clip:ViT-H-14' },
        plain: 'plain-folder',
      }),
    );
    const { entries, notes } = await readIndicesPaths(file);
    expect(entries.get('laion')).toEqual({
      location: join(d, 'laion5B'),
      columns: ['url', 'caption'],
      metadataFormat: 'arrow',
    });
    expect(entries.get('other')).toEqual({ location: 'https://host/h14' });
    expect(entries.get('plain')).toEqual({ location: join(d, 'plain-folder') });
    expect(notes).toEqual([
      expect.stringMatching(
        /clip_model \(laion, other\) accepted without effect: queries are embedded by the model of --model/,
      ),
      expect.stringMatching(/provide_safety_model \(laion\) accepted without effect/),
    ]);
    await writeFile(file, JSON.stringify({ laion: { indice_folder: 'x', columns_to_retrun: ['url'] } }));
    await expect(readIndicesPaths(file)).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringMatching(/Unknown option .*laion\.columns_to_retrun/),
    });
  });
});

describe('/knn-service answers what clip back answers (deduplicate: its dedup on the reconstructed vectors)', () => {
  it('planted pairs and chains: the same ids as clip back, a chain dropped whole behind its best member', async () => {
    const { index } = await openIndexAt(join(fixtures, 'folders/dups'));
    const fetcher = createFetcher();
    const app = createServer({ indices: new Map([['dups', index]]), fetcher, log: () => {} });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const { openNpy } = await import('../../../src/io/npy.js');
      const npy = await openNpy(join(fixtures, 'folders/dups/queries.npy'));
      const queries = await npy.readRows(0, npy.header.rowCount);
      await npy.close();
      const clipBack = JSON.parse(
        await (await import('node:fs/promises')).readFile(join(fixtures, 'answers/dups_clip_back.json'), 'utf8'),
      ) as { k: number; queries: { all: number[]; ids: number[]; similarities: number[] }[] };
      for (const [i, want] of clipBack.queries.entries()) {
        const ask = async (deduplicate: boolean) => {
          const res = await fetch(`${base}/knn-service`, {
            method: 'POST',
            body: JSON.stringify({
              embedding_input: [...queries.slice(i * 64, (i + 1) * 64)],
              num_images: clipBack.k,
              indice_name: 'dups',
              deduplicate,
            }),
          });
          return (await res.json()) as { id: number; similarity: number }[];
        };
        expect((await ask(false)).map((r) => r.id)).toEqual(want.all);
        const deduplicated = await ask(true);
        expect(deduplicated.map((r) => r.id)).toEqual(want.ids);
        deduplicated.forEach((r, j) => expect(r.similarity).toBeCloseTo(want.similarities[j]!, 5));
      }
    } finally {
      await app.close();
      await fetcher.close();
      index.close();
    }
  });
});
