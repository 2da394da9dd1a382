import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeNpyHeader } from '../../src/io/npy.js';
import { embedQuery, readEmbeddingFile } from '../../src/select/query-embedding.js';
import { parseSpec } from '../../src/select/spec.js';
import { tempDir } from '../helpers/tmp.js';

/** What np.save writes for a float32 array of this shape (C order). */
async function npy(shape: number[], values: number[]): Promise<string> {
  const path = join(await tempDir(), `q-${shape.join('x')}.npy`);
  await writeFile(
    path,
    Buffer.concat([encodeNpyHeader(shape, 'float32'), Buffer.from(Float32Array.from(values).buffer)]),
  );
  return path;
}

describe('query embeddings as users save them', () => {
  it('np.save(path, vector): a (d,) file is ONE embedding of d values (it was read as d rows of one value)', async () => {
    const v = await readEmbeddingFile(await npy([4], [1, 2, 3, 4]), 'query q');
    expect([...v]).toEqual([1, 2, 3, 4]);
  });

  it('a (1, d) file is one embedding too', async () => {
    expect([...(await readEmbeddingFile(await npy([1, 3], [5, 6, 7]), 'query q'))]).toEqual([5, 6, 7]);
  });

  it('an (n, d) file with n > 1 is refused with its shape and what to do, never row 0 silently', async () => {
    await expect(readEmbeddingFile(await npy([3, 2], [1, 0, 0, 1, 1, 1]), 'query q')).rejects.toMatchObject({
      code: 'QUERY_INVALID',
      message: expect.stringMatching(
        /query q: .*q-3x2\.npy has shape \(3, 2\), 3 embeddings; a query is one embedding, shape \(d,\) or \(1, d\)/,
      ),
      hint: expect.stringMatching(/one query per file/),
    });
  });

  it('non-finite values are refused with the one message, from a file and from a list', async () => {
    await expect(
      embedQuery({ embedding_file: await npy([3], [1, NaN, 0]) }, undefined, 'query q'),
    ).rejects.toMatchObject({
      code: 'QUERY_INVALID',
      message: 'query q: expected finite numbers but value 1 is NaN',
    });
    await expect(embedQuery({ embedding: [0, 1, -Infinity] }, undefined, 'query r')).rejects.toMatchObject({
      message: 'query r: expected finite numbers but value 2 is -Infinity',
    });
  });

  it('a spec with .nan in YAML gets past the schema and meets the same check', async () => {
    const { parse } = await import('yaml');
    const spec = parseSpec(parse('index: ./i\nqueries: [{name: q, embedding: [1, .nan], count: 1}]'), 'spec.yaml', '/');
    await expect(embedQuery(spec.queries[0]!, undefined, 'query q')).rejects.toMatchObject({
      message: 'query q: expected finite numbers but value 1 is NaN',
    });
  });
});
