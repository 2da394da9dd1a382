import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_QUERY_CANDIDATES, parseSpec, readSpec } from '../../src/select/spec.js';
import { outcomeOf, runs } from '../helpers/property.js';
import { tempDir } from '../helpers/tmp.js';

// For any document, the spec parser gives a spec whose fields are in range or an INVALID_OPTION / INPUT_NOT_FOUND
// error: never another exception, never a hang (YAML aliases, deep nesting).

const number = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 1, 2 ** 31, 2 ** 32 + 15, 1_145_324_612, Number.MAX_SAFE_INTEGER, 1e308),
);
const scalar = fc.oneof(number, fc.string({ maxLength: 20 }), fc.boolean(), fc.constant(null));
const value = fc.oneof(scalar, fc.jsonValue({ maxDepth: 3 }));

const query = fc.record(
  {
    name: fc.oneof(fc.stringMatching(/^[a-z]{1,8}$/), scalar),
    text: fc.oneof(fc.string({ maxLength: 20 }), value),
    embedding: fc.oneof(fc.array(number, { maxLength: 8 }), value),
    embedding_file: value,
    count: fc.oneof(fc.integer({ min: 1, max: 100 }), number, value),
    min_similarity: fc.oneof(fc.double({ min: -1, max: 1, noNaN: true }), number),
    where: value,
    weight: fc.oneof(number, value),
  },
  { requiredKeys: ['name', 'count'] },
);

const spec = fc.record(
  {
    index: fc.oneof(
      fc.constant('./idx'),
      fc.record({ url: fc.webUrl(), indice_name: fc.string({ maxLength: 8 }) }),
      value,
    ),
    queries: fc.oneof(fc.array(query, { minLength: 1, maxLength: 3 }), value),
    seed: fc.oneof(fc.nat(), number),
    oversample: fc.oneof(fc.double({ min: 1, max: 100, noNaN: true }), number),
    image: fc.oneof(
      fc.record(
        { size: number, encode_format: fc.constantFrom('jpg', 'png', 'webp', 'npy', 'gif'), encode_quality: number },
        { requiredKeys: [] },
      ),
      value,
    ),
    fetch: fc.oneof(
      fc.record(
        {
          concurrency: number,
          timeout: number,
          max_bytes: fc.oneof(number, fc.constantFrom('20GB', '1.5 MiB', 'lots', '9'.repeat(400) + 'TB')),
        },
        { requiredKeys: [] },
      ),
      value,
    ),
    cache: fc.oneof(fc.record({ dir: value, max_bytes: value }, { requiredKeys: [] }), value),
    dedup: value,
    extra: value,
  },
  { requiredKeys: ['index', 'queries'] },
);

/** YAML-ish text: fragments that stress the parser (aliases, anchors, deep flow collections, tags, tabs). */
const yamlText = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        'index: ./idx\n',
        'queries:\n',
        '  - name: q\n',
        '    count: 3\n',
        '    text: red\n',
        'a: &x [1, 2]\n',
        'b: *x\n',
        'c: *nope\n',
        '!!binary AAAA\n',
        '---\n',
        '...\n',
        '\t',
        ': :\n',
        '? k\n',
        '"unterminated\n',
        "'x\n",
        '%YAML 1.1\n',
        '<<: *x\n',
      ),
      fc.integer({ min: 1, max: 2000 }).map((d) => `deep: ${'['.repeat(d)}${']'.repeat(d)}\n`),
      fc
        .integer({ min: 1, max: 30 })
        .map(
          (n) =>
            [
              'a0: &a0 [x, x, x, x, x, x, x, x, x, x]',
              ...Array.from(
                { length: n },
                (_, i) =>
                  `a${i + 1}: &a${i + 1} [*a${i}, *a${i}, *a${i}, *a${i}, *a${i}, *a${i}, *a${i}, *a${i}, *a${i}, *a${i}]`,
              ),
            ].join('\n') + '\n',
        ),
      fc.string({ maxLength: 30 }),
    ),
    { maxLength: 8 },
  )
  .map((parts) => parts.join(''));

function checkSpec(s: ReturnType<typeof parseSpec>): void {
  expect(s.queries.length).toBeGreaterThan(0);
  for (const q of s.queries) {
    expect(Number.isSafeInteger(q.count) && q.count >= 1 && q.count * s.oversample <= MAX_QUERY_CANDIDATES).toBe(true);
    expect(q.min_similarity).toBeGreaterThanOrEqual(-1);
  }
  expect(s.oversample).toBeGreaterThanOrEqual(1);
  expect(Number.isSafeInteger(s.fetch.max_bytes) && s.fetch.max_bytes > 0).toBe(true);
  expect(Number.isSafeInteger(s.cache.max_bytes) && s.cache.max_bytes > 0).toBe(true);
}

describe('spec parser (property)', () => {
  it('parseSpec: any object gives a spec in range or INVALID_OPTION naming the source', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(spec, value), async (input) => {
        const outcome = await outcomeOf(async () => parseSpec(input, 'spec.yaml', '/base'));
        if (outcome.ok) checkSpec(outcome.value);
        else {
          expect(outcome.code).toBe('INVALID_OPTION');
          expect(outcome.message).toMatch(/^spec\.yaml: /);
        }
      }),
      { numRuns: runs(600) },
    );
  });

  it('readSpec: any text (JSON or YAML) gives a spec or a ClipstreamError naming the file, within a deadline', async () => {
    const dir = await tempDir();
    let n = 0;
    const text = fc.oneof(
      yamlText,
      spec.map((s) => JSON.stringify(s)),
      fc.string({ maxLength: 200 }),
    );
    await fc.assert(
      fc.asyncProperty(text, async (t) => {
        const path = join(dir, `s${n++}.yaml`);
        await writeFile(path, t);
        const outcome = await outcomeOf(() => readSpec(path), 10_000);
        if (outcome.ok) checkSpec(outcome.value);
        else expect(outcome.message).toContain(path);
      }),
      { numRuns: runs(80) },
    );
  });
});
