import { createWriteStream, existsSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createTarSampleStream } from '../../src/sink/index.js';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipstreamError } from '../../src/core/errors.js';
import type { ProgressCounter } from '../../src/download/progress.js';
import { download } from '../../src/download/run.js';
import { readNpyImage } from '../../src/image/index.js';
import { runInference } from '../../src/inference/run.js';
import { writeColorClip } from '../../src/clip/index.js';
import { startImageServer, type ImageServer } from '../helpers/image-server.js';
import { tempDir } from '../helpers/tmp.js';
import { readAllTars, readParquetRows, readStats, sha256, writeCsv } from './helpers.js';

let server: ImageServer;
beforeAll(async () => {
  server = await startImageServer();
});
afterAll(async () => {
  await server.close();
});

const base = { allowPrivateNetworks: true, threadCount: 8, timeout: 3 } as const;

/** 6 good images of known sizes, a 404, an HTML page, and an opted-out image, with captions and 2 extra columns. */
async function mixedList(dir: string) {
  const good = [
    [640, 480, 'ff0000'],
    [300, 800, '00ff00'],
    [256, 256, '0000ff'],
    [100, 50, 'ffff00'],
    [1024, 768, '00ffff'],
    [480, 640, 'ff00ff'],
  ] as const;
  const rows: (string | number | null)[][] = good.map(([w, h, c], i) => [
    `${server.url}/img/${w}x${h}.jpg?color=${c}`,
    `caption ${i} with "quotes", commas`,
    'cc-by',
    i,
  ]);
  rows.push([`${server.url}/status/404`, 'dead', 'cc0', 6]);
  rows.push([`${server.url}/html`, 'a page', 'cc0', 7]);
  rows.push([`${server.url}/robots?tag=noai`, 'opted out', 'cc0', 8]);
  const path = await writeCsv(join(dir, 'urls.csv'), ['url', 'text', 'license', 'n'], rows);
  return { path, rows, good };
}

describe('download (img2dataset-compatible job)', () => {
  it('--encode-format npy: {key}.npy members of the resized pixels, which inference reads as images', async () => {
    const dir = await tempDir();
    const { path, good } = await mixedList(dir);
    const out = join(dir, 'out');
    await download({
      ...base,
      urlList: path,
      inputFormat: 'csv',
      captionCol: 'text',
      outputFolder: out,
      outputFormat: 'webdataset',
      imageSize: 16,
      resizeMode: 'center_crop',
      encodeFormat: 'npy',
    });
    const samples = await readAllTars(out);
    expect(samples).toHaveLength(good.length);
    for (const s of samples) {
      const image = readNpyImage(s.npy as Buffer)!;
      expect([image.width, image.height]).toEqual([16, 16]);
      const colour = good[JSON.parse(String(s.json)).caption.match(/caption (\d)/)[1]]![2];
      expect([...image.pixels.subarray(0, 3)].map((v) => Math.round(v / 255) * 255)).toEqual(
        [0, 2, 4].map((i) => parseInt(colour.slice(i, i + 2), 16)),
      );
    }
    // One more tar whose npy member is not an image: left out and named, not fatal.
    const tar = createTarSampleStream();
    const written = pipeline(tar.readable, createWriteStream(join(out, '00099.tar')));
    await tar.writeSample({
      key: 'broken',
      status: 'success',
      meta: { caption: 'broken' },
      image: { data: Buffer.from('not pixels'), format: 'npy' },
    });
    await tar.finish();
    await written;
    const emb = join(dir, 'emb');
    const summary = await runInference({
      input: out,
      outputFolder: emb,
      model: await writeColorClip(join(dir, 'model')),
      batchSize: 4,
    });
    expect(summary.count).toBe(good.length);
    expect(summary.skipped).toEqual(['00099.tar/broken.npy']);
  });

  it('writes webdataset shards, a parquet row per input and stats, with img2dataset fields', async () => {
    const dir = await tempDir();
    const { path, rows } = await mixedList(dir);
    const out = join(dir, 'out');
    const summary = await download({
      ...base,
      urlList: path,
      inputFormat: 'csv',
      captionCol: 'text',
      saveAdditionalColumns: ['license', 'n'],
      outputFolder: out,
      outputFormat: 'webdataset',
      imageSize: 64,
      resizeMode: 'center_crop',
      numberSamplePerShard: 5,
    });
    expect(summary).toMatchObject({ count: 9, successes: 6, failedToDownload: 2, failedToResize: 1, shardsWritten: 2 });
    expect(summary.reasons).toEqual({ http_404: 1, opted_out: 1, not_an_image: 1 });
    expect((await readdir(out)).sort()).toEqual([
      '00000.parquet',
      '00000.tar',
      '00000_stats.json',
      '00001.parquet',
      '00001.tar',
      '00001_stats.json',
    ]);

    const samples = await readAllTars(out);
    // ceil(log10(5)) = 1 digit for the row, 5 for the shard (img2dataset's compute_key)
    expect(samples.map((s) => s.__key__).sort()).toEqual(['000000', '000001', '000002', '000003', '000004', '000010']);
    for (const s of samples) {
      const meta = JSON.parse(String(s.json));
      const row = rows[Number(meta.n)]!;
      // img2dataset's order (its reader's columns: additional, caption, url; then downloader.py's meta), our reason last
      expect(Object.keys(meta)).toEqual([
        'license',
        'n',
        'caption',
        'url',
        'key',
        'status',
        'error_message',
        'width',
        'height',
        'original_width',
        'original_height',
        'exif',
        'sha256',
        'reason',
      ]);
      expect(meta.exif).toBe('{}'); // the test server's JPEGs carry no EXIF: exifread gives {}
      expect(meta).toMatchObject({
        url: row[0],
        caption: row[1],
        license: 'cc-by',
        key: s.__key__,
        status: 'success',
        width: 64,
        height: 64,
      });
      expect(String(s.txt)).toBe(row[1]);
      const original = await (await fetch(meta.url)).arrayBuffer();
      expect(meta.sha256).toBe(sha256(new Uint8Array(original)));
      const info = await sharp(s.jpg as Buffer).metadata();
      expect([info.format, info.width, info.height]).toEqual(['jpeg', 64, 64]);
      const [w, h] = /(\d+)x(\d+)/.exec(meta.url)!.slice(1).map(Number);
      expect([meta.original_width, meta.original_height]).toEqual([w, h]);
    }

    const parquet = [
      ...(await readParquetRows(join(out, '00000.parquet'))),
      ...(await readParquetRows(join(out, '00001.parquet'))),
    ];
    expect(parquet).toHaveLength(9);
    const dead = parquet.find((r) => Number(r.n) === 6)!;
    expect(dead).toMatchObject({ status: 'failed_to_download', reason: 'http_404', key: '000011' });
    expect(parquet.find((r) => Number(r.n) === 7)).toMatchObject({
      status: 'failed_to_resize',
      reason: 'not_an_image',
    });
    expect(parquet.find((r) => Number(r.n) === 8)).toMatchObject({
      status: 'failed_to_download',
      reason: 'opted_out',
      error_message: 'Use of image disallowed by X-Robots-Tag directive',
    });

    const stats = await readStats(out, '00001');
    expect(stats).toMatchObject({ count: 4, successes: 1, failed_to_download: 2, failed_to_resize: 1 });
    expect(stats.status_dict).toMatchObject({ success: 1, 'Use of image disallowed by X-Robots-Tag directive': 1 });
    for (const field of ['duration', 'start_time', 'end_time']) expect(typeof stats[field]).toBe('number');
  });

  it.each(['files', 'parquet', 'dummy'] as const)(
    'lays out the %s output format like img2dataset',
    async (outputFormat) => {
      const dir = await tempDir();
      const { path } = await mixedList(dir);
      const out = join(dir, 'out');
      await download({
        ...base,
        urlList: path,
        inputFormat: 'csv',
        captionCol: 'text',
        outputFolder: out,
        outputFormat,
        imageSize: 32,
      });
      const names = (await readdir(out)).sort();
      if (outputFormat === 'files') {
        expect(names).toEqual(['00000', '00000.parquet', '00000_stats.json']);
        const files = (await readdir(join(out, '00000'))).sort();
        expect(files).toHaveLength(18);
        expect(files.slice(0, 3)).toEqual(['000000000.jpg', '000000000.json', '000000000.txt']);
        const json = await readFile(join(out, '00000', '000000000.json'), 'utf8');
        expect(json).toContain('\n    "url"'); // indent=4, as img2dataset writes it
      } else if (outputFormat === 'parquet') {
        expect(names).toEqual(['00000.parquet', '00000_stats.json']);
        const rows = await readParquetRows(join(out, '00000.parquet'));
        expect(rows).toHaveLength(9);
        const ok = rows.filter((r) => r.status === 'success');
        expect(ok).toHaveLength(6);
        for (const r of ok) expect((await sharp(r.jpg as Uint8Array).metadata()).width).toBe(32);
        expect(rows.find((r) => r.status !== 'success')!.jpg).toBeNull();
      } else {
        expect(names).toEqual(['00000_stats.json']);
      }
      expect(await readStats(out)).toMatchObject({ count: 9, successes: 6 });
    },
  );

  it('verify-hash rejects a mismatch and keeps a match', async () => {
    const dir = await tempDir();
    const good = `${server.url}/img/40x30.png?color=123456`;
    const bytes = new Uint8Array(await (await fetch(good)).arrayBuffer());
    const path = await writeCsv(
      join(dir, 'u.csv'),
      ['url', 'h'],
      [
        [good, sha256(bytes)],
        [good + '&x=1', 'deadbeef'.repeat(8)],
      ],
    );
    const out = join(dir, 'out');
    const s = await download({
      ...base,
      urlList: path,
      inputFormat: 'csv',
      verifyHash: ['h', 'sha256'],
      outputFolder: out,
      outputFormat: 'dummy',
    });
    expect(s).toMatchObject({ successes: 1, failedToDownload: 1, reasons: { hash_mismatch: 1 } });
  });

  it('honours X-Robots-Tag by default and ignores it with disallowedHeaderDirectives []', async () => {
    const dir = await tempDir();
    const path = join(dir, 'u.txt');
    await writeFile(
      path,
      [
        `${server.url}/robots?tag=noai`,
        `${server.url}/robots?tag=noimageindex`,
        `${server.url}/robots?tag=nofollow`,
      ].join('\n'),
    );
    const on = await download({ ...base, urlList: path, outputFolder: join(dir, 'a'), outputFormat: 'dummy' });
    expect(on).toMatchObject({ successes: 1, reasons: { opted_out: 2 } });
    const off = await download({
      ...base,
      urlList: path,
      outputFolder: join(dir, 'b'),
      outputFormat: 'dummy',
      disallowedHeaderDirectives: [],
    });
    expect(off.successes).toBe(3);
  });

  it('refuses 127.0.0.1 unless private networks are allowed', async () => {
    const dir = await tempDir();
    const path = join(dir, 'u.txt');
    await writeFile(path, `${server.url}/img/20x20.jpg\n`);
    const refused = await download({ urlList: path, outputFolder: join(dir, 'a'), outputFormat: 'dummy' });
    expect(refused).toMatchObject({ successes: 0, reasons: { private_address: 1 } });
    const allowed = await download({ ...base, urlList: path, outputFolder: join(dir, 'b'), outputFormat: 'dummy' });
    expect(allowed.successes).toBe(1);
  });

  it('incremental skips finished shards, extend appends, overwrite starts again', async () => {
    const dir = await tempDir();
    const path = join(dir, 'u.txt');
    await writeFile(
      path,
      Array.from({ length: 6 }, (_, i) => `${server.url}/img/20x20.jpg?color=0000${i}0`).join('\n'),
    );
    const out = join(dir, 'out');
    const opts = {
      ...base,
      urlList: path,
      outputFolder: out,
      outputFormat: 'webdataset' as const,
      numberSamplePerShard: 2,
    };
    expect(await download(opts)).toMatchObject({ shardsWritten: 3, shardsSkipped: 0 });
    const before = server.totalRequests();
    expect(await download(opts)).toMatchObject({ shardsWritten: 0, shardsSkipped: 3, count: 0 });
    expect(server.totalRequests()).toBe(before);
    expect(await download({ ...opts, incrementalMode: 'extend' })).toMatchObject({ shardsWritten: 3 });
    expect((await readdir(out)).filter((f) => f.endsWith('.tar')).sort()).toEqual([
      '00000.tar',
      '00001.tar',
      '00002.tar',
      '00003.tar',
      '00004.tar',
      '00005.tar',
    ]);
    expect(await download({ ...opts, incrementalMode: 'overwrite' })).toMatchObject({ shardsWritten: 3 });
    expect((await readdir(out)).filter((f) => f.endsWith('.tar'))).toHaveLength(3);
  });

  it('a bad URL inside a good list is a failed row; the run goes on; progress learns the total for its ETA', async () => {
    const dir = await tempDir();
    const path = join(dir, 'u.txt');
    await writeFile(path, ['not a url', 'ftp://example.com/x.jpg', `${server.url}/img/20x20.jpg`].join('\n'));
    let counter: ProgressCounter | undefined;
    const s = await download(
      { ...base, urlList: path, outputFolder: join(dir, 'o'), outputFormat: 'dummy' },
      { onStart: (p) => (counter = p) },
    );
    expect(s).toMatchObject({ count: 3, successes: 1, reasons: { invalid_url: 2 } });
    await expect.poll(() => counter!.snapshot().total).toBe(3);
    expect(counter!.snapshot()).toMatchObject({ done: 3, successes: 1, shardsDone: 1 });
  });

  it('a saved column nested 200 000 deep fails its row (invalid_row), not the shard: the good rows are kept', async () => {
    // issue 15: the shard failed with "Maximum call stack size exceeded" on every rerun, losing its good rows
    const dir = await tempDir();
    const path = join(dir, 'u.jsonl');
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    await writeFile(
      path,
      [
        JSON.stringify({ url: `${server.url}/img/20x20.jpg`, meta: 1 }),
        `{"url": "${server.url}/img/21x21.jpg", "meta": ${deep}}`,
        JSON.stringify({ url: `${server.url}/img/22x22.jpg`, meta: { a: [1] } }),
      ].join('\n'),
    );
    const out = join(dir, 'o');
    const s = await download({
      ...base,
      urlList: path,
      inputFormat: 'jsonl',
      outputFolder: out,
      outputFormat: 'webdataset',
      saveAdditionalColumns: ['meta'],
    });
    expect(s).toMatchObject({ count: 3, successes: 2, reasons: { invalid_row: 1 }, shardsWritten: 1 });
    expect(server.requests.get('/img/21x21.jpg')).toBeUndefined(); // not downloaded
    const rows = await readParquetRows(join(out, '00000.parquet'));
    const failed = rows.find((r) => r.status !== 'success')!;
    expect(failed).toMatchObject({ url: `${server.url}/img/21x21.jpg`, meta: null, reason: 'invalid_row' });
    expect(String(failed.error_message)).toMatch(
      /column "meta" of this row of .*u\.jsonl nests deeper than 100 levels/,
    );
    // samples are written in completion order (as img2dataset's): compare by key
    const saved = (await readAllTars(out)).map((t) => JSON.parse(String(t.json)) as { key: string; meta: unknown });
    expect(saved.sort((a, b) => a.key.localeCompare(b.key)).map((j) => j.meta)).toEqual([1, { a: [1] }]);
  });

  it('reads a parquet url list and saves its additional columns with their types', async () => {
    const dir = await tempDir();
    const urls = [`${server.url}/img/30x20.jpg`, `${server.url}/status/404`, `${server.url}/img/20x30.png`];
    const path = join(dir, 'u.parquet');
    await writeFile(
      path,
      Buffer.from(
        parquetWriteBuffer({
          columnData: [
            { name: 'URL', data: urls, type: 'STRING' },
            { name: 'TEXT', data: ['a', 'b', null], type: 'STRING' },
            { name: 'orig_w', data: [30n, 1n, 20n], type: 'INT64' },
          ],
        }),
      ),
    );
    const out = join(dir, 'o');
    let counter: ProgressCounter | undefined;
    const s = await download(
      {
        ...base,
        urlList: path,
        inputFormat: 'parquet',
        urlCol: 'URL',
        captionCol: 'TEXT',
        saveAdditionalColumns: ['orig_w'],
        outputFolder: out,
        outputFormat: 'webdataset',
      },
      { onStart: (p) => (counter = p) },
    );
    expect(s).toMatchObject({ count: 3, successes: 2 });
    await expect.poll(() => counter!.snapshot().total).toBe(3);
    const rows = await readParquetRows(join(out, '00000.parquet'));
    expect(rows.map((r) => [r.url, r.caption, Number(r.orig_w), r.status])).toEqual(
      expect.arrayContaining([
        [urls[0], 'a', 30, 'success'],
        [urls[1], 'b', 1, 'failed_to_download'],
        [urls[2], null, 20, 'success'],
      ]),
    );
    const samples = await readAllTars(out);
    expect(samples.map((x) => String(x.txt)).sort()).toEqual(['', 'a']); // a null caption is written as ""
  });

  describe('bad input: a clear error naming the file, nothing written', () => {
    it('a missing url list', async () => {
      const dir = await tempDir();
      const out = join(dir, 'out');
      const run = download({ urlList: join(dir, 'nope.parquet'), inputFormat: 'parquet', outputFolder: out });
      await expect(run).rejects.toMatchObject({
        code: 'INPUT_NOT_FOUND',
        message: expect.stringContaining('nope.parquet'),
      });
      expect(existsSync(out)).toBe(false);
    });

    it('a missing url column', async () => {
      const dir = await tempDir();
      const path = await writeCsv(join(dir, 'u.csv'), ['link', 'text'], [['http://x/1.jpg', 'a']]);
      const out = join(dir, 'out');
      const err = await download({ urlList: path, inputFormat: 'csv', outputFolder: out }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClipstreamError);
      expect(err).toMatchObject({ code: 'MISSING_COLUMN' });
      expect((err as Error).message).toMatch(/"url".*u\.csv/);
      expect((err as Error).message).toContain('link');
      expect(existsSync(out)).toBe(false);
    });

    it('a bad gzip', async () => {
      const dir = await tempDir();
      const path = join(dir, 'u.txt.gz');
      await writeFile(path, 'this is not gzip');
      const out = join(dir, 'out');
      await expect(download({ urlList: path, inputFormat: 'txt.gz', outputFolder: out })).rejects.toMatchObject({
        code: 'INPUT_MALFORMED',
        message: expect.stringContaining('u.txt.gz'),
      });
      expect(existsSync(out)).toBe(false);
    });
  });
});
