import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { buildIndex } from '../../src/index/index.js';
import {
  candidatesOf,
  loadPlan,
  parseByteSize,
  parseSpec,
  readSpec,
  resolvePlan,
  writePlan,
  type Plan,
} from '../../src/select/index.js';
import { tempDir } from '../helpers/tmp.js';
import { streamWorld } from '../stream/world.js';

const base = { index: '/idx', queries: [{ name: 'cats', text: 'a cat', count: 10, min_similarity: 0.2 }] };
const parse = (spec: unknown) => parseSpec(spec, 'spec.yaml', '/base');

describe('spec validation: every error names the field', () => {
  test.each([
    ['unknown top-level field', { ...base, colour: 1 }, /spec\.yaml: Unknown field colour/],
    [
      'unknown query field',
      { ...base, queries: [{ ...base.queries[0], mincount: 3 }] },
      /Unknown field queries\[0\]\.mincount/,
    ],
    ['count 0', { ...base, queries: [{ ...base.queries[0], count: 0 }] }, /queries\[0\]\.count.*received 0/],
    ['negative count', { ...base, queries: [{ ...base.queries[0], count: -5 }] }, /queries\[0\]\.count/],
    [
      'two query kinds',
      { ...base, queries: [{ ...base.queries[0], image: 'cat.jpg' }] },
      /queries\[0\]: Expected exactly one of text, image, embedding, embedding_file but received text and image/,
    ],
    ['no query kind', { ...base, queries: [{ name: 'x', count: 3 }] }, /queries\[0\]: Expected exactly one of/],
    [
      'threshold above 1',
      { ...base, queries: [{ ...base.queries[0], min_similarity: 1.5 }] },
      /queries\[0\]\.min_similarity.*received 1\.5/,
    ],
    [
      'threshold below -1',
      { ...base, queries: [{ ...base.queries[0], min_similarity: -2 }] },
      /queries\[0\]\.min_similarity/,
    ],
    ['missing index', { queries: base.queries }, /index/],
    ['no queries', { index: '/idx', queries: [] }, /queries/],
    [
      'duplicate names',
      { ...base, queries: [base.queries[0], base.queries[0]] },
      /queries\[1\]\.name: Duplicate query name "cats"/,
    ],
    [
      'bad resize mode',
      { ...base, image: { resize_mode: 'stretch' } },
      /Expected one of "no", "keep_ratio".* for image\.resize_mode but received "stretch"/,
    ],
    [
      'bad interpolation',
      { ...base, image: { upscale_interpolation: 'box' } },
      /Expected one of "nearest".* for image\.upscale_interpolation but received "box"/,
    ],
    ['bad cache size', { ...base, cache: { dir: '/c', max_bytes: 'lots' } }, /cache\.max_bytes/],
    ['bad weight', { ...base, queries: [{ ...base.queries[0], weight: 0 }] }, /queries\[0\]\.weight/],
    // issue 15: 1 145 324 612 × 3 × 1.25 + 16 wrapped at 2^32 to a search for 15 rows ("available 15")
    [
      'count × oversample over what a search returns',
      { ...base, queries: [{ ...base.queries[0], count: 1_145_324_612 }] },
      /queries\[0\]\.count: 1145324612 × oversample 3 = 3435973836 candidates, over the 2147483648 a query can keep \(one index search returns at most 4294967295 rows\)/,
    ],
    [
      'count over the maximum',
      { ...base, queries: [{ ...base.queries[0], count: 2 ** 40 }], oversample: 1 },
      /expected number to be <=2147483648 for queries\[0\]\.count/,
    ],
  ])('%s', (_name, spec, message) => {
    expect(() => parse(spec)).toThrow(message);
  });

  test('at most 1 000 queries in one spec, said with what to do', () => {
    const queries = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `q${i}`, text: 'a cat', count: 1 }));
    expect(parse({ ...base, queries: queries(1000) }).queries).toHaveLength(1000);
    expect(() => parse({ ...base, queries: queries(1001) })).toThrow(/at most 1000 queries in one spec: split it/);
  });

  test('counts up to the documented maximum of candidates are accepted', () => {
    expect(parse({ ...base, queries: [{ ...base.queries[0], count: 2 ** 31 }], oversample: 1 }).queries[0]!.count).toBe(
      2 ** 31,
    );
    expect(parse({ ...base, queries: [{ ...base.queries[0], count: 2 ** 30 }], oversample: 2 }).queries[0]!.count).toBe(
      2 ** 30,
    );
  });

  test('defaults, relative paths resolved against the spec folder, sizes with units', () => {
    const spec = parse({
      index: './idx',
      model: 'm',
      queries: [{ name: 'e', embedding_file: 'q.npy', count: 2 }],
      cache: { dir: 'c', max_bytes: '2GiB' },
    });
    expect(spec.index).toBe('/base/idx');
    expect(spec.model).toBe('/base/m');
    expect(spec.queries[0]!.embedding_file).toBe('/base/q.npy');
    expect(spec.queries[0]!.min_similarity).toBe(-1);
    expect(spec.cache).toEqual({ dir: '/base/c', max_bytes: 2 * 1024 ** 3 });
    expect(spec.image).toMatchObject({
      size: 256,
      resize_mode: 'center_crop',
      encode_format: 'jpg',
      encode_quality: 95,
      upscale_interpolation: 'lanczos',
      downscale_interpolation: 'area',
    });
    const cubic = parse({
      index: './idx',
      queries: [{ name: 'e', embedding_file: 'q.npy', count: 2 }],
      image: { downscale_interpolation: 'bicubic' },
    });
    expect(cubic.image.downscale_interpolation).toBe('cubic');
    expect(spec.fetch).toMatchObject({
      concurrency: 256,
      timeout: 10,
      retries: 2,
      per_host: 16,
      allow_private_networks: false,
    });
    expect(spec.dedup).toEqual({ ids: true, urls: true, near_duplicate: null });
    expect(parseByteSize('20GB')).toBe(20e9);
    expect(parseByteSize('500 MiB')).toBe(500 * 1024 ** 2);
  });

  test('paths: fsspec URLs are refused naming the field, file:// URLs are paths, http(s) stays a URL', () => {
    expect(() => parse({ ...base, index: 's3://bucket/idx' })).toThrow(
      /Expected a local path or an http\(s\) URL for index in spec\.yaml but received "s3:\/\/bucket\/idx"/,
    );
    expect(parse({ ...base, index: 'https://host/laion5B-index' }).index).toBe('https://host/laion5B-index'); // a faiss folder
    expect(() => parse({ ...base, cache: { dir: 'gs://b/cache' } })).toThrow(/for cache\.dir in spec\.yaml/);
    expect(() => parse({ ...base, cache: { dir: 'https://host/cache' } })).toThrow(
      /for cache\.dir in spec\.yaml.*https:\/\/ paths are not supported/,
    );
    expect(() => parse({ ...base, index: 'file://relative/idx' })).toThrow(
      /for index in spec\.yaml.*file:\/\/\/absolute\/path/,
    );
    expect(() => parse({ ...base, model: 'hf://openai/clip' })).toThrow(/for model in spec\.yaml/);
    expect(() => parse({ ...base, queries: [{ name: 'q', image: 's3://b/cat.jpg', count: 1 }] })).toThrow(
      /local path or an http\(s\) URL for queries\[0\]\.image in spec\.yaml/,
    );
    expect(() => parse({ ...base, queries: [{ name: 'q', embedding_file: 'gs://b/q.npy', count: 1 }] })).toThrow(
      /for queries\[0\]\.embedding_file/,
    );
    const spec = parse({
      index: 'file:///data/idx',
      cache: { dir: 'file:///tmp/c' },
      queries: [{ name: 'q', image: 'https://example.com/cat.jpg', count: 1 }],
    });
    expect([spec.index, spec.cache.dir, spec.queries[0]!.image]).toEqual([
      '/data/idx',
      '/tmp/c',
      'https://example.com/cat.jpg',
    ]);
  });

  test('YAML the parser only warns about (unknown tags and directives) prints no Node warning', async () => {
    const dir = await tempDir();
    await writeFile(
      join(dir, 'tagged.yaml'),
      '%FOO bar\n---\nindex: !odd ./idx\nqueries:\n  - {name: q, text: red, count: 1}\n',
    );
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      expect((await readSpec(join(dir, 'tagged.yaml'))).queries[0]!.name).toBe('q');
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => w.message)).toEqual([]);
  });

  test('a file that is not YAML, or missing, says so', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'bad.yaml'), 'index: [unclosed');
    await expect(readSpec(join(dir, 'bad.yaml'))).rejects.toThrow(/bad\.yaml is not valid YAML or JSON/);
    await expect(readSpec(join(dir, 'none.yaml'))).rejects.toThrow(/spec file not found: .*none\.yaml/);
    await writeFile(join(dir, 'list.yaml'), '- 1\n- 2\n');
    await expect(readSpec(join(dir, 'list.yaml'))).rejects.toThrow(/expected a mapping/);
  });
});

const world = streamWorld({ counts: { red: 30, blue: 30 } });
// the same colours with other rows (another remote index behind the same url and name)
const otherWorld = streamWorld({ counts: { blue: 30, red: 30 } }); // interleaved the other way: red rows have odd ids

describe('plan', () => {
  test('a missing index, a wrong embedding size, and text queries without a model are refused by name', async () => {
    const w = world();
    const dir = await tempDir();
    await expect(resolvePlan(parse({ ...base, index: join(dir, 'none') }))).rejects.toThrow(
      /index: no index at .*none/,
    );
    await expect(
      resolvePlan(parse({ index: w.indexDir, queries: [{ name: 'v', embedding: [1, 0, 0], count: 2 }] })),
    ).rejects.toThrow(/query v: the embedding has 3 dimensions but the index has 64/);
    await expect(
      resolvePlan(parse({ index: w.indexDir, queries: [{ name: 'red', text: 'red', count: 2 }] })),
    ).rejects.toThrow(/text or image queries but no model/);
  });

  test('a search limit over 2^32 − 1 is refused, not wrapped (LanceDB takes 32 bits: 2^32 + 15 gave 15 rows)', async () => {
    const w = world();
    const { openIndex } = await import('../../src/index/index.js');
    const index = await openIndex(w.indexDir);
    try {
      const vector = new Float32Array(64).fill(0.125);
      for (const q of [{ k: 2 ** 32 + 15 }, { minSimilarity: -1, maxResults: 2 ** 32 + 15 }, { k: 0 }, { k: 2.5 }]) {
        await expect(index.search({ vector, ...q })).rejects.toMatchObject({
          code: 'QUERY_INVALID',
          message: expect.stringMatching(/Expected an integer from 1 to 4294967295 for (k|maxResults)/),
        });
      }
      expect(await index.search({ vector, k: 15 })).toHaveLength(15);
    } finally {
      index.close();
    }
  });

  test('an embedding query works without a model; the plan round-trips through its folder', async () => {
    const w = world();
    const dir = await tempDir();
    const red = await resolvePlan(
      parse({
        index: w.indexDir,
        model: w.modelDir,
        queries: [{ name: 'red', text: 'red', count: 5, min_similarity: 0.9 }],
      }),
    );
    const { loadClipModel } = await import('../../src/clip/index.js');
    const model = await loadClipModel(w.modelDir);
    const [blue] = await model.encodeText(['blue']);
    await model.close();
    const byEmbedding = await resolvePlan(
      parse({
        index: w.indexDir,
        queries: [{ name: 'b', embedding: [...blue!].map((x) => x * 3), count: 4, min_similarity: 0.9 }],
      }),
    );
    expect(byEmbedding.candidates[0]!.length).toBe(12);
    expect((await candidatesOf(byEmbedding))[0]!.every((c) => w.rows[c.id]!.colour === 'blue')).toBe(true);
    expect(red.header.queries[0]).toMatchObject({
      name: 'red',
      requested: 5,
      available: 30,
      available_more: false,
      planned: 15,
    });
    // The search stops at what the plan can use (18 rows here): "18 or more available".
    const few = await resolvePlan(
      parse({
        index: w.indexDir,
        queries: [{ name: 'b', embedding: [...blue!], count: 1, min_similarity: 0.9 }],
        oversample: 1,
      }),
    );
    expect(few.header.queries[0]).toMatchObject({ available: 18, available_more: true, planned: 1 });
    expect((await candidatesOf(red))[0]!.every((c) => w.rows[c.id]!.colour === 'red')).toBe(true);
    await writePlan(join(dir, 'plan'), red);
    const back = await loadPlan(join(dir, 'plan'));
    expect(back.header).toEqual(red.header);
    expect(await candidatesOf(back)).toEqual(await candidatesOf(red));
    // a plan folder written before the interpolation options: read with img2dataset's defaults, same id
    const planJson = join(dir, 'plan', 'plan.json');
    const stored = JSON.parse(await readFile(planJson, 'utf8')) as { id: string; image: Record<string, unknown> };
    delete stored.image.upscale_interpolation;
    delete stored.image.downscale_interpolation;
    await writeFile(planJson, JSON.stringify(stored));
    const older = await loadPlan(join(dir, 'plan'));
    expect(older.header.id).toBe(red.header.id);
    expect([older.header.image.upscale_interpolation, older.header.image.downscale_interpolation]).toEqual([
      'lanczos',
      'area',
    ]);
    await writeFile(planJson, JSON.stringify({ ...stored, image: { ...stored.image, resize_mode: 'stretch' } }));
    await expect(loadPlan(join(dir, 'plan'))).rejects.toThrow(
      /plan\.json has an unusable image block: Expected one of .* for image\.resize_mode but received "stretch"/,
    );
  });

  test('queries do not share samples: an id goes to the query it is most similar to', async () => {
    const w = world();
    const plan = await resolvePlan(
      parse({
        index: w.indexDir,
        model: w.modelDir,
        oversample: 10,
        queries: [
          { name: 'any', text: 'purple', count: 60 }, // red and blue both near purple
          { name: 'red', text: 'red', count: 30 },
        ],
      }),
    );
    const [anyRows, redRows] = await candidatesOf(plan);
    const any = new Set(anyRows!.map((c) => c.id));
    const red = redRows!.map((c) => c.id);
    expect(red.length).toBe(30);
    for (const id of red) expect(any.has(id)).toBe(false);
  });

  test('a plan made for another index is refused', async () => {
    const w = world();
    const dir = await tempDir();
    const plan = await resolvePlan(
      parse({ index: w.indexDir, model: w.modelDir, queries: [{ name: 'red', text: 'red', count: 5 }] }),
    );
    await writePlan(join(dir, 'plan'), plan);
    // Rebuild the index at the same path: a new creation time.
    await buildIndex({ embeddings: join(w.dir, 'emb'), output: join(dir, 'copy') });
    const moved = { ...plan, header: { ...plan.header, index: { ...plan.header.index, location: join(dir, 'copy') } } };
    await writePlan(join(dir, 'plan2'), moved);
    await expect(loadPlan(join(dir, 'plan2'))).rejects.toThrow(/was made for another index/);
    await expect(loadPlan(join(dir, 'plan'))).resolves.toBeDefined();
  });
});

describe('plan against a remote index', () => {
  test('a clip back /knn-service answers the queries: the same candidates as the local index', async () => {
    const w = world();
    const { createServer } = await import('../../src/server/app.js');
    const { openIndex } = await import('../../src/index/index.js');
    const { createFetcher } = await import('../../src/fetch/index.js');
    const index = await openIndex(w.indexDir);
    const fetcher = createFetcher({});
    const indices = new Map([['colours', index]]);
    const app = createServer({ indices, fetcher });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const queries = [{ name: 'red', text: 'red', count: 4, min_similarity: 0.9 }];
      const remote = await resolvePlan(
        parse({ index: { url: `${url}/knn-service`, indice_name: 'colours' }, model: w.modelDir, queries }),
      );
      const local = await resolvePlan(parse({ index: w.indexDir, model: w.modelDir, queries }));
      const ids = async (p: Plan) => (await candidatesOf(p))[0]!.map((c) => c.id);
      expect(await ids(remote)).toEqual(await ids(local));
      expect(remote.header.queries[0]).toMatchObject({ available: 30, planned: 12 });
      await expect(
        resolvePlan(parse({ index: { url: `${url}/knn-service`, indice_name: 'nope' }, model: w.modelDir, queries })),
      ).rejects.toThrow(/refused the query: unknown indice_name "nope"/);
      // The same url and name with other rows behind them: a remote index has no identity of its own, so the plan
      // id follows the rows of the first blocks.
      const other = await openIndex(otherWorld().indexDir);
      try {
        indices.set('colours', other);
        const changed = await resolvePlan(
          parse({ index: { url: `${url}/knn-service`, indice_name: 'colours' }, model: w.modelDir, queries }),
        );
        expect(changed.header.id).not.toBe(remote.header.id);
        indices.set('colours', index);
        const again = await resolvePlan(
          parse({ index: { url: `${url}/knn-service`, indice_name: 'colours' }, model: w.modelDir, queries }),
        );
        expect(again.header.id).toBe(remote.header.id);
      } finally {
        other.close();
      }
    } finally {
      await app.close();
      await fetcher.close();
      index.close();
    }
  });
});
