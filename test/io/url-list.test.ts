import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import type { UrlRow } from '../../src/core/types.js';
import {
  INPUT_FORMATS as inputFormats,
  inspectUrlList,
  readUrlList,
  type InputFormat,
  type UrlListOptions,
} from '../../src/io/url-list.js';
import { tempDir } from '../helpers/tmp.js';

interface Row {
  url: string | null;
  caption: string;
  width: number;
  license: string;
}

const rows: Row[] = [
  { url: 'http://img.example/1.jpg', caption: 'a cat, sitting', width: 640, license: 'cc-by' },
  { url: 'http://img.example/2.jpg', caption: 'say "cheese"\nthen\r\nsmile', width: -3, license: 'cc0' },
  { url: null, caption: 'no url here', width: 0, license: 'x,y' },
  {
    url: 'http://img.example/ü.jpg?a=1&b=[2]',
    caption: 'ünïcødé 🐱 [ ] { } \\ \t tab',
    width: 123456789012,
    license: '',
  },
  { url: 'http://img.example/5.jpg', caption: '', width: 5, license: 'mit' },
];
const header = ['url', 'caption', 'width', 'license'] as const;

function delimited(data: Row[], d: string): string {
  const cell = (v: unknown) => {
    const s = v === null ? '' : String(v);
    return /["\r\n]/.test(s) || s.includes(d) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [header.join(d), ...data.map((r) => header.map((h) => cell(r[h])).join(d))].join('\r\n') + '\r\n';
}

function parquetBytes(data: Row[], rowGroupSize?: number): Buffer {
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: 'url', data: data.map((r) => r.url), type: 'STRING' },
      { name: 'caption', data: data.map((r) => r.caption), type: 'STRING' },
      { name: 'width', data: data.map((r) => BigInt(r.width)), type: 'INT64' },
      { name: 'license', data: data.map((r) => r.license), type: 'STRING' },
    ],
    ...(rowGroupSize ? { rowGroupSize } : {}),
  });
  return Buffer.from(buffer);
}

/** The bytes of `data` in `format`, as pandas / pyarrow / a text editor would write them. */
function encode(format: InputFormat, data: Row[]): Buffer {
  const gz = format.endsWith('.gz');
  const base = gz ? format.slice(0, -3) : format;
  let bytes: Buffer;
  switch (base) {
    case 'txt':
      bytes = Buffer.from(data.map((r) => r.url ?? '').join('\n') + '\n');
      break;
    case 'csv':
      bytes = Buffer.from(delimited(data, ','));
      break;
    case 'tsv':
      bytes = Buffer.from(delimited(data, '\t'));
      break;
    case 'json':
      bytes = Buffer.from(JSON.stringify(data));
      break;
    case 'jsonl':
      bytes = Buffer.from(data.map((r) => JSON.stringify(r)).join('\n') + '\n');
      break;
    default:
      bytes = parquetBytes(data);
  }
  return gz ? gzipSync(bytes) : bytes;
}

function opts(urlList: string, inputFormat: InputFormat, extra: Partial<UrlListOptions> = {}): UrlListOptions {
  return { urlList, inputFormat, urlCol: 'url', additionalColumns: [], ...extra };
}

const full = (urlList: string, inputFormat: InputFormat): UrlListOptions =>
  opts(urlList, inputFormat, { captionCol: 'caption', additionalColumns: ['width', 'license'] });

async function collect(it: AsyncIterable<UrlRow>): Promise<UrlRow[]> {
  const out: UrlRow[] = [];
  for await (const row of it) out.push(row);
  return out;
}

/** Runs `fn` and returns the error it throws (fails if it does not). */
async function failure(fn: () => Promise<unknown>): Promise<Error & { code?: string; hint?: string }> {
  try {
    await fn();
  } catch (err) {
    return err as Error & { code?: string; hint?: string };
  }
  throw new Error('expected an error');
}

const expected: UrlRow[] = rows.map((r, index) => ({
  index,
  url: r.url ?? '',
  caption: r.caption,
  columns: { width: r.width, license: r.license },
}));

describe('readUrlList: the same rows from every format', () => {
  it.each(inputFormats.filter((f) => !f.startsWith('txt')))('%s', async (format) => {
    const dir = await tempDir();
    const file = join(dir, `list.${format}`);
    await writeFile(file, encode(format, rows));
    expect(await inspectUrlList(full(file, format))).toEqual([file]);
    expect(await collect(readUrlList(full(file, format)))).toEqual(expected);
  });

  it.each(['txt', 'txt.gz'] as const)('%s: one url per line, no header, blank lines are not rows', async (format) => {
    const dir = await tempDir();
    const file = join(dir, `list.${format}`);
    const text = '\r\nhttp://a/1.jpg\r\n\n   \n  http://a/2.jpg  \nhttp://a/3.jpg'; // no final newline
    await writeFile(file, format === 'txt' ? text : gzipSync(text));
    // urlCol is ignored for txt: its only column is "url".
    const got = await collect(readUrlList(opts(file, format, { urlCol: 'link' })));
    expect(got).toEqual(
      ['http://a/1.jpg', 'http://a/2.jpg', 'http://a/3.jpg'].map((url, index) => ({
        index,
        url,
        caption: null,
        columns: {},
      })),
    );
  });

  it('txt in every format fixture too (urls only)', async () => {
    const dir = await tempDir();
    const file = join(dir, 'list.txt');
    await writeFile(
      file,
      encode(
        'txt',
        rows.filter((r) => r.url !== null),
      ),
    );
    const got = await collect(readUrlList(opts(file, 'txt')));
    expect(got.map((r) => r.url)).toEqual(rows.filter((r) => r.url !== null).map((r) => r.url));
  });

  it('accepts a single gzip file whatever its name (e.g. list.gz)', async () => {
    const dir = await tempDir();
    const file = join(dir, 'list.gz');
    await writeFile(file, encode('jsonl.gz', rows));
    expect(await collect(readUrlList(full(file, 'jsonl.gz')))).toEqual(expected);
  });

  it('csv: a BOM, a header-only file and short records (missing cells → null)', async () => {
    const dir = await tempDir();
    const a = join(dir, 'a.csv');
    await writeFile(a, '\ufeffurl,caption,width\nhttp://a/1.jpg,one,1\nhttp://a/2.jpg\n');
    expect(await collect(readUrlList(opts(a, 'csv', { captionCol: 'caption', additionalColumns: ['width'] })))).toEqual(
      [
        { index: 0, url: 'http://a/1.jpg', caption: 'one', columns: { width: 1 } },
        { index: 1, url: 'http://a/2.jpg', caption: null, columns: { width: null } },
      ],
    );
    const b = join(dir, 'b.csv');
    await writeFile(b, 'url,caption\n');
    expect(await inspectUrlList(opts(b, 'csv', { captionCol: 'caption' }))).toEqual([b]);
    expect(await collect(readUrlList(opts(b, 'csv')))).toEqual([]);
  });

  it('csv: column types come from the first rows of the file; a later odd cell stays a string', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.csv');
    const lines = ['url,n,score,flag,zip'];
    for (let i = 0; i < 1500; i++) lines.push(`http://a/${i},${i},${i / 2},${i % 2 === 0},0${i}`);
    lines.push('http://a/odd,n/a,,maybe,1');
    await writeFile(file, lines.join('\n'));
    const got = await collect(readUrlList(opts(file, 'csv', { additionalColumns: ['n', 'score', 'flag', 'zip'] })));
    expect(got).toHaveLength(1501);
    expect(got[3]!.columns).toEqual({ n: 3, score: 1.5, flag: false, zip: '03' });
    expect(got[1200]!.columns).toEqual({ n: 1200, score: 600, flag: true, zip: '01200' });
    expect(got[1500]!.columns).toEqual({ n: 'n/a', score: null, flag: 'maybe', zip: '1' });
  });

  it('json / jsonl: null and missing cells, non-string urls, nested values keep their JSON types', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.jsonl');
    await writeFile(
      file,
      [
        '{"url": "http://a/1.jpg", "caption": null, "meta": {"k": [1, 2]}}',
        '',
        '{"caption": "no url key", "meta": null}',
        '{"url": 12345, "caption": 7}',
      ].join('\n'),
    );
    expect(
      await collect(readUrlList(opts(file, 'jsonl', { captionCol: 'caption', additionalColumns: ['meta'] }))),
    ).toEqual([
      { index: 0, url: 'http://a/1.jpg', caption: null, columns: { meta: { k: [1, 2] } } },
      { index: 1, url: '', caption: 'no url key', columns: { meta: null } },
      { index: 2, url: '12345', caption: '7', columns: { meta: null } },
    ]);
  });

  it('json / jsonl: a value nested deeper than 100 levels fails its row (null cells, an error naming the column), not the list', async () => {
    // issue 15: nested 200 000 deep, JSON.parse reads it but JSON.stringify / structured clone overflow the stack
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const dir = await tempDir();
    const lines = [
      '{"url": "http://a/1.jpg", "caption": "one", "meta": 1}',
      `{"url": "http://a/2.jpg", "caption": "two", "meta": ${deep(200_000)}}`,
      `{"url": ${deep(200_000)}, "caption": ${deep(101)}, "meta": ${deep(100)}}`,
      '{"url": "http://a/4.jpg", "caption": "four", "meta": {"k": [[1]]}}',
    ];
    for (const format of ['jsonl', 'json'] as const) {
      const file = join(dir, `a.${format}`);
      await writeFile(file, format === 'jsonl' ? lines.join('\n') : `[${lines.join(',\n')}]`);
      const got = await collect(
        readUrlList(opts(file, format, { captionCol: 'caption', additionalColumns: ['meta'] })),
      );
      expect(got.map((r) => [r.url, r.caption, r.error])).toEqual([
        ['http://a/1.jpg', 'one', undefined],
        ['http://a/2.jpg', 'two', `column "meta" of this row of ${file} nests deeper than 100 levels`],
        ['', null, `column "url", column "caption" of this row of ${file} nest deeper than 100 levels`],
        ['http://a/4.jpg', 'four', undefined],
      ]);
      expect(got.map((r) => r.columns.meta)).toEqual([1, null, JSON.parse(deep(100)), { k: [[1]] }]);
      expect(() => structuredClone(got)).not.toThrow(); // what the download's worker threads receive
    }
  });

  it('urlCol and captionCol name other columns', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.tsv');
    await writeFile(file, 'LINK\tTEXT\nhttp://a/1.jpg\thello\n');
    expect(await collect(readUrlList(opts(file, 'tsv', { urlCol: 'LINK', captionCol: 'TEXT' })))).toEqual([
      { index: 0, url: 'http://a/1.jpg', caption: 'hello', columns: {} },
    ]);
  });
});

describe('readUrlList: folders and startIndex', () => {
  async function folder(format: InputFormat) {
    const dir = await tempDir();
    // Written out of order; names sort as b < c < d (code-unit order, like Python's sorted glob).
    await writeFile(join(dir, `part-c.${format}`), encode(format, rows.slice(2, 4)));
    await writeFile(join(dir, `part-b.${format}`), encode(format, rows.slice(0, 2)));
    await writeFile(join(dir, `part-d.${format}`), encode(format, rows.slice(4)));
    // Not part of the list: other extensions, a folder with a matching name.
    await writeFile(join(dir, 'notes.md'), 'not a list');
    await writeFile(join(dir, `part-a.${format}.bak`), 'old');
    await mkdir(join(dir, `sub.${format}`));
    return dir;
  }

  it.each(['csv', 'jsonl.gz', 'json', 'parquet'] as const)(
    '%s: files in sorted order, index continuous',
    async (format) => {
      const dir = await folder(format);
      expect(await inspectUrlList(full(dir, format))).toEqual(
        ['b', 'c', 'd'].map((p) => join(dir, `part-${p}.${format}`)),
      );
      expect(await collect(readUrlList(full(dir, format)))).toEqual(expected);
    },
  );

  it.each(['csv', 'json', 'parquet', 'txt'] as const)('%s: startIndex skips rows across files', async (format) => {
    const dir = await folder(format);
    const list = format === 'txt' ? opts(dir, format) : full(dir, format);
    const all = await collect(readUrlList(list));
    for (const start of [0, 1, 2, 3, 4, 5, 9]) {
      const got = await collect(readUrlList(list, start));
      expect(got, `start ${start}`).toEqual(all.slice(start));
      expect(got[0]?.index ?? start).toBe(start);
    }
  });

  it('stopping early closes the files (the generator can be abandoned)', async () => {
    const dir = await folder('csv.gz');
    const gen = readUrlList(full(dir, 'csv.gz'));
    expect((await gen.next()).value).toEqual(expected[0]);
    await gen.return(undefined);
    expect((await gen.next()).done).toBe(true);
  });
});

describe('errors name the file and the column', () => {
  it('a missing path → INPUT_NOT_FOUND', async () => {
    const dir = await tempDir();
    const missing = join(dir, 'nope.csv');
    for (const run of [() => inspectUrlList(opts(missing, 'csv')), () => collect(readUrlList(opts(missing, 'csv')))]) {
      const err = await failure(run);
      expect(err.code).toBe('INPUT_NOT_FOUND');
      expect(err.message).toBe(`url list not found: ${missing}`);
    }
  });

  it('a folder without matching files → INPUT_NOT_FOUND naming the folder and the pattern', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.csv'), 'url\n');
    const err = await failure(() => inspectUrlList(opts(dir, 'csv.gz')));
    expect(err.code).toBe('INPUT_NOT_FOUND');
    expect(err.message).toContain(dir);
    expect(err.message).toContain('*.csv.gz');
  });

  it.each(['csv', 'tsv.gz', 'json', 'jsonl', 'parquet'] as const)(
    '%s: a missing column → MISSING_COLUMN',
    async (format) => {
      const dir = await tempDir();
      const file = join(dir, `a.${format}`);
      await writeFile(file, encode(format, rows));
      const cases: [Partial<UrlListOptions>, string, RegExp][] = [
        [{ urlCol: 'link' }, 'link', /--url-col/],
        [{ captionCol: 'text' }, 'text', /--caption-col/],
        [{ additionalColumns: ['width', 'height'] }, 'height', /--save-additional-columns/],
      ];
      for (const [o, column, hint] of cases) {
        for (const run of [
          () => inspectUrlList(opts(file, format, o)),
          () => collect(readUrlList(opts(file, format, o))),
        ]) {
          const err = await failure(run);
          expect(err.code).toBe('MISSING_COLUMN');
          expect(err.message).toBe(
            `column "${column}" not found in ${file}; columns are: url, caption, width, license`,
          );
          expect(err.hint).toMatch(hint);
        }
      }
    },
  );

  it('txt has only a url column', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.txt');
    await writeFile(file, 'http://a/1.jpg\n');
    const err = await failure(() => inspectUrlList(opts(file, 'txt', { captionCol: 'caption' })));
    expect(err.code).toBe('MISSING_COLUMN');
    expect(err.message).toContain(`column "caption" not found in ${file}; columns are: url`);
  });

  it('inspect checks every file of a folder, not just the first', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.csv'), 'url,caption\nhttp://a,b\n');
    await writeFile(join(dir, 'b.csv'), 'link,caption\nhttp://a,b\n');
    const err = await failure(() => inspectUrlList(opts(dir, 'csv')));
    expect(err.code).toBe('MISSING_COLUMN');
    expect(err.message).toContain(join(dir, 'b.csv'));
    // Reading without inspecting fails at the same file, after the rows of the good one.
    const got: UrlRow[] = [];
    const err2 = await failure(async () => {
      for await (const r of readUrlList(opts(dir, 'csv'))) got.push(r);
    });
    expect(err2.code).toBe('MISSING_COLUMN');
    expect(got).toHaveLength(1);
  });

  it('gzip magic: a plain file given as .gz, and a gzip file given as plain → INPUT_MALFORMED with the format to use', async () => {
    const dir = await tempDir();
    const plain = join(dir, 'a.csv.gz');
    await writeFile(plain, 'url\nhttp://a\n');
    let err = await failure(() => inspectUrlList(opts(plain, 'csv.gz')));
    expect(err.code).toBe('INPUT_MALFORMED');
    expect(err.message).toContain(plain);
    expect(err.hint).toMatch(/--input-format csv\b/);
    const gz = join(dir, 'b.jsonl');
    await writeFile(gz, gzipSync('{"url": "http://a"}\n'));
    err = await failure(() => collect(readUrlList(opts(gz, 'jsonl'))));
    expect(err.code).toBe('INPUT_MALFORMED');
    expect(err.message).toContain(gz);
    expect(err.hint).toMatch(/--input-format jsonl\.gz/);
  });

  it('a corrupt gzip header → INPUT_MALFORMED, not a raw zlib error', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.txt.gz');
    await writeFile(file, Buffer.from([0x1f, 0x8b, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99]));
    const err = await failure(() => collect(readUrlList(opts(file, 'txt.gz'))));
    expect(err.code).toBe('INPUT_MALFORMED');
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/gzip/);
  });

  it('a file that is not parquet → INPUT_MALFORMED', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.parquet');
    await writeFile(file, 'url\nhttp://a\n');
    const err = await failure(() => inspectUrlList(opts(file, 'parquet')));
    expect(err.code).toBe('INPUT_MALFORMED');
    expect(err.message).toContain(`not a valid parquet file: ${file}`);
  });

  it('a parquet page header without its level lengths → INPUT_MALFORMED, not a hang (download through the CLI)', async () => {
    // Found by url-list.property.test.ts: hyparquet's RLE decoder looped forever at a NaN offset.
    const dir = await tempDir();
    const bytes = new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'url', data: ['http://a.b/c', 'http://d.e/f', null], type: 'STRING' },
          { name: 'extra', data: ['{"a":1}', null, '[1,2]'], type: 'STRING' },
        ],
      }),
    );
    expect([bytes[20], bytes[54]]).toEqual([4, 6]); // the layout the damage below was found on
    bytes[20] = 206; // the v2 page header's field deltas: repetition_levels_byte_length is lost
    bytes[54] = 246;
    const file = join(dir, 'a.parquet');
    await writeFile(file, bytes);
    const cli = join(import.meta.dirname, '../../dist/cli/main.js');
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [cli, 'download', '--url-list', file, '--input-format', 'parquet', '--output-folder', join(dir, 'o')],
        { timeout: 30_000 },
        (err, _stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr }),
      );
    });
    expect(r.stderr).toMatch(
      /a\.parquet: column url has a damaged page header at byte 4: an incomplete data page \(v2\) header/,
    );
    expect(r.code).toBe(2);
  });

  it('an invalid jsonl line → INPUT_MALFORMED naming the file and the line, after the good rows', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a.jsonl');
    await writeFile(file, '{"url": "http://a/1"}\n{"url": "http://a/2"}\n\n{"url": "http://a/3"\n');
    const got: UrlRow[] = [];
    const err = await failure(async () => {
      for await (const r of readUrlList(opts(file, 'jsonl'))) got.push(r);
    });
    expect(err.code).toBe('INPUT_MALFORMED');
    expect(err.message).toContain(`line 4 of ${file}`);
    expect(got).toHaveLength(2);
  });

  it('an invalid json array and an unterminated csv quote → INPUT_MALFORMED naming the file', async () => {
    const dir = await tempDir();
    const json = join(dir, 'a.json');
    await writeFile(json, '[{"url": "http://a/1"},\n{"url": "http://a/2",}]');
    let err = await failure(() => collect(readUrlList(opts(json, 'json'))));
    expect(err.code).toBe('INPUT_MALFORMED');
    expect(err.message).toContain(`element 1 (line 2) of ${json}`);
    const csv = join(dir, 'a.csv');
    await writeFile(csv, 'url,caption\nhttp://a,"open\n');
    err = await failure(() => collect(readUrlList(opts(csv, 'csv'))));
    expect(err.code).toBe('INPUT_MALFORMED');
    expect(err.message).toContain(`${csv}: the quote opened on line 2`);
  });

  it('bad options → INVALID_OPTION', async () => {
    const err = await failure(() => inspectUrlList(opts('x', 'xml' as InputFormat)));
    expect(err.code).toBe('INVALID_OPTION');
    expect(err.message).toMatch(/Expected one of txt, txt\.gz, .* for inputFormat but received "xml"/);
    const err2 = await failure(() => collect(readUrlList(opts('x', 'txt'), -1)));
    expect(err2.code).toBe('INVALID_OPTION');
  });
});

describe('streaming: rows arrive before the file has been read', () => {
  it('a 200k-line csv.gz with a damaged tail: the first rows come out, then INPUT_MALFORMED', async () => {
    const dir = await tempDir();
    const lines = ['url,caption,n'];
    for (let i = 0; i < 200_000; i++) lines.push(`http://img.example/${i}.jpg,"caption, number ${i}",${i}`);
    const gz = gzipSync(lines.join('\n') + '\n');

    const truncated = join(dir, 'truncated.csv.gz');
    await writeFile(truncated, gz.subarray(0, gz.length - 2000));
    const damaged = join(dir, 'damaged.csv.gz');
    const bad = Buffer.from(gz);
    bad.fill(0xff, bad.length - 3000, bad.length - 2000);
    await writeFile(damaged, bad);

    for (const file of [truncated, damaged]) {
      let count = 0;
      let first: UrlRow | undefined;
      const err = await failure(async () => {
        for await (const row of readUrlList(
          opts(file, 'csv.gz', { captionCol: 'caption', additionalColumns: ['n'] }),
        )) {
          first ??= row;
          if (row.index !== count) throw new Error(`index ${row.index} at row ${count}`);
          count++;
        }
      });
      expect(first).toEqual({
        index: 0,
        url: 'http://img.example/0.jpg',
        caption: 'caption, number 0',
        columns: { n: 0 },
      });
      expect(count).toBeGreaterThan(100_000);
      expect(count).toBeLessThan(200_000);
      expect(err.code).toBe('INPUT_MALFORMED');
      expect(err.message).toContain(`corrupt gzip data in ${file} after`);
      // inspect reads only the header: it does not notice the damaged tail.
      expect(await inspectUrlList(opts(file, 'csv.gz'))).toEqual([file]);
    }
  });

  it('a large json array is streamed element by element (a damaged tail fails only at the end)', async () => {
    const dir = await tempDir();
    const file = join(dir, 'big.json');
    const parts: string[] = [];
    for (let i = 0; i < 50_000; i++) parts.push(JSON.stringify({ url: `http://a/${i}`, caption: `{[${i}]}"` }));
    await writeFile(file, `[${parts.join(',')},{"url": "http://a/oops"`);
    let count = 0;
    const err = await failure(async () => {
      for await (const _ of readUrlList(opts(file, 'json'))) count++;
    });
    expect(count).toBe(50_000);
    expect(err.code).toBe('INPUT_MALFORMED');
    expect(err.message).toContain(file);
  });
});
