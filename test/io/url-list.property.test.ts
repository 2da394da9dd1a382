import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import type { UrlRow } from '../../src/core/types.js';
import { inspectUrlList, readUrlList, type InputFormat } from '../../src/io/url-list.js';
import { damaged, outcomeOf, runs } from '../helpers/property.js';
import { tempDir } from '../helpers/tmp.js';

// For any file content in any input format, inspectUrlList + readUrlList give rows or refuse the file with a
// ClipstreamError: never another exception (zlib, JSON, RangeError from deep nesting), never a hang.

/** Text with what trips parsers: quotes, separators, line ends, brackets, escapes, BOMs, lone surrogates. */
const trickyText = fc
  .stringMatching(/^[\s\S]*$/, { maxLength: 60 })
  .chain((s) =>
    fc
      .array(
        fc.constantFrom(
          '"',
          "'",
          ',',
          '\t',
          '\n',
          '\r\n',
          '\r',
          '{',
          '}',
          '[',
          ']',
          '\\',
          '\ufeff',
          '\ud800',
          'url',
          ':',
          'null',
        ),
        { maxLength: 12 },
      )
      .map((bits) => bits.join('') + s),
  );

/** A JSON value nested `depth` deep around a scalar. */
const nested = fc
  .tuple(fc.integer({ min: 1, max: 3000 }), fc.boolean())
  .map(([depth, asObject]) =>
    asObject ? '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) : '['.repeat(depth) + ']'.repeat(depth),
  );

const jsonRecord = fc.record(
  {
    url: fc.oneof(
      fc.webUrl(),
      fc.constant(null),
      fc.integer(),
      fc.jsonValue({ maxDepth: 3 }),
      nested.map((t) => JSON.parse(t) as unknown),
    ),
    caption: fc.oneof(trickyText, fc.constant(null), fc.jsonValue({ maxDepth: 2 })),
    extra: fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      nested.map((t) => JSON.parse(t) as unknown),
    ),
  },
  { requiredKeys: [] },
);

const jsonlText = fc
  .array(
    fc.oneof(
      jsonRecord.map((r) => JSON.stringify(r)),
      trickyText,
      nested,
    ),
    { maxLength: 8 },
  )
  .map((lines) => lines.join('\n'));
const jsonText = fc.oneof(
  fc.array(jsonRecord, { maxLength: 8 }).map((rs) => JSON.stringify(rs)),
  fc
    .array(
      fc.oneof(
        jsonRecord.map((r) => JSON.stringify(r)),
        trickyText,
        nested,
      ),
      { maxLength: 6 },
    )
    .map((parts) => `[${parts.join(',')}]`),
  trickyText,
);
const delimitedText = (d: string) =>
  fc
    .tuple(
      fc.constantFrom(`url${d}caption${d}extra`, `caption${d}url`, `url`, `"url"${d}"extra"`, ''),
      fc.array(
        fc
          .array(fc.oneof(trickyText, fc.webUrl(), fc.integer().map(String)), { maxLength: 4 })
          .map((cells) => cells.join(d)),
        { maxLength: 10 },
      ),
    )
    .map(([header, rows]) => [header, ...rows].join('\n'));

function parquet(rows: { url: unknown; extra: unknown }[]): Uint8Array {
  const text = (v: unknown) => (v === null || v === undefined ? null : typeof v === 'string' ? v : JSON.stringify(v));
  return new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        { name: 'url', data: rows.map((r) => text(r.url)), type: 'STRING' },
        { name: 'extra', data: rows.map((r) => text(r.extra)), type: 'STRING' },
      ],
    }),
  );
}

const encoder = new TextEncoder();
const textFile = (text: fc.Arbitrary<string>) => text.map((t) => encoder.encode(t));
const gz = (bytes: fc.Arbitrary<Uint8Array>) => bytes.map((b) => new Uint8Array(gzipSync(b)));

const cases: [InputFormat, fc.Arbitrary<Uint8Array>][] = [
  ['txt', textFile(trickyText)],
  ['csv', textFile(delimitedText(','))],
  ['tsv', textFile(delimitedText('\t'))],
  ['jsonl', textFile(jsonlText)],
  ['json', textFile(jsonText)],
  ['csv.gz', fc.oneof(gz(textFile(delimitedText(','))), gz(textFile(delimitedText(','))).chain(damaged))],
  [
    'jsonl.gz',
    fc.oneof(gz(textFile(jsonlText)), gz(textFile(jsonlText)).chain(damaged), fc.uint8Array({ maxLength: 40 })),
  ],
  [
    'parquet',
    fc.oneof(
      fc
        .array(fc.record({ url: fc.oneof(fc.webUrl(), fc.constant(null)), extra: fc.jsonValue({ maxDepth: 3 }) }), {
          maxLength: 6,
        })
        .map(parquet),
      fc
        .array(fc.record({ url: fc.webUrl(), extra: fc.constant(null) }), { minLength: 1, maxLength: 6 })
        .map(parquet)
        .chain(damaged),
      fc.uint8Array({ maxLength: 200 }),
    ),
  ],
];

async function readAll(urlList: string, inputFormat: InputFormat, extra: boolean): Promise<UrlRow[]> {
  const plain = inputFormat === 'txt' || inputFormat === 'parquet';
  const options = {
    urlList,
    inputFormat,
    urlCol: 'url',
    captionCol: plain ? undefined : 'caption',
    additionalColumns: extra && inputFormat !== 'txt' ? ['extra'] : [],
  };
  const rows: UrlRow[] = [];
  await inspectUrlList(options);
  for await (const row of readUrlList(options)) rows.push(row);
  return rows;
}

describe('url-list readers (property)', () => {
  it.each(cases)(
    '%s: any content gives rows in order or a ClipstreamError, within a deadline',
    async (format, content) => {
      const dir = await tempDir();
      let n = 0;
      await fc.assert(
        fc.asyncProperty(content, async (bytes) => {
          const path = join(dir, `list${n++}.${format}`);
          await writeFile(path, bytes);
          for (const extra of [false, true]) {
            const outcome = await outcomeOf(() => readAll(path, format, extra));
            if (!outcome.ok) continue;
            outcome.value.forEach((row, i) => {
              expect(row.index).toBe(i);
              expect(typeof row.url).toBe('string');
              expect(row.caption === null || typeof row.caption === 'string').toBe(true);
            });
            expect(() => structuredClone(outcome.value)).not.toThrow(); // what the download's workers receive
            expect(() =>
              JSON.stringify(outcome.value, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)),
            ).not.toThrow(); // what the sinks write
          }
        }),
        { numRuns: runs(format.endsWith('gz') || format === 'parquet' ? 40 : 80) },
      );
    },
  );
});
