import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SampleRecord } from '../../src/core/types.js';
import type { ParquetColumn } from '../../src/io/parquet-write.js';
import {
  listDoneShards,
  openShardWriter,
  OUTPUT_FORMATS,
  removePartialShards,
  StatsCollector,
  type OutputFormat,
  type ShardStats,
} from '../../src/sink/index.js';
import { tempDir } from '../helpers/tmp.js';
import { failedRecord, readParquet, readTarMembers, successRecord } from './helpers.js';

const metaColumns: ParquetColumn[] = [
  { name: 'url', type: 'STRING' },
  { name: 'caption', type: 'STRING' },
  { name: 'extra', type: 'INT64' },
  { name: 'key', type: 'STRING' },
  { name: 'status', type: 'STRING' },
  { name: 'error_message', type: 'STRING' },
  { name: 'reason', type: 'STRING' },
  { name: 'width', type: 'INT32' },
  { name: 'height', type: 'INT32' },
  { name: 'original_width', type: 'INT32' },
  { name: 'original_height', type: 'INT32' },
  { name: 'sha256', type: 'STRING' },
];

const N = 7;
const M = 3;

/** N successes with captions and M failures, interleaved like completion order. */
function records(): SampleRecord[] {
  const out: SampleRecord[] = [];
  for (let i = 0; i < N + M; i++) {
    const key = String(i).padStart(9, '0');
    const columns = { extra: i * 1000 };
    if (i % 3 === 1 && out.filter((r) => r.status !== 'success').length < M) {
      out.push(
        i % 2
          ? failedRecord(key, 'failed_to_download', 'http_404', 'HTTP Error 404: Not Found', {
              caption: `caption ${i}`,
              columns,
            })
          : failedRecord(key, 'failed_to_resize', 'too_small', 'image too small', { caption: `caption ${i}`, columns }),
      );
    } else {
      out.push(successRecord(key, { caption: `caption ${i}`, columns }));
    }
  }
  return out;
}

async function writeShard(outputFolder: string, outputFormat: OutputFormat, recs: SampleRecord[], shardName = '00000') {
  // durable (fsync) as in production: the suite covers the sync paths of every format
  const writer = await openShardWriter({ outputFolder, shardName, outputFormat, encodeFormat: 'jpg', metaColumns });
  const stats = new StatsCollector();
  for (const r of recs) {
    await writer.write(r);
    stats.add(r);
  }
  const result = stats.finish();
  await writer.close(result);
  return result;
}

const expectedFiles: Record<OutputFormat, string[]> = {
  webdataset: ['00000.parquet', '00000.tar', '00000_stats.json'],
  files: ['00000', '00000.parquet', '00000_stats.json'],
  parquet: ['00000.parquet', '00000_stats.json'],
  dummy: ['00000_stats.json'],
};

describe.each(OUTPUT_FORMATS)('shard writer conformance: %s', (format) => {
  it('writes the img2dataset layout: data, meta parquet of every record, stats last', async () => {
    const dir = await tempDir();
    const recs = records();
    const successes = recs.filter((r) => r.status === 'success');
    expect(successes).toHaveLength(N);
    const stats = await writeShard(dir, format, recs);

    expect((await readdir(dir)).sort()).toEqual(expectedFiles[format]);

    const writtenStats = JSON.parse(await readFile(join(dir, '00000_stats.json'), 'utf8')) as ShardStats;
    expect(writtenStats).toEqual(stats);
    expect(writtenStats).toMatchObject({ count: N + M, successes: N, failed_to_download: 2, failed_to_resize: 1 });
    expect(writtenStats.reason_dict).toEqual({ http_404: 2, too_small: 1 });
    expect(await listDoneShards(dir)).toEqual(new Set([0]));

    if (format === 'webdataset') {
      const members = await readTarMembers(join(dir, '00000.tar'));
      expect(members.map((m) => m.name)).toEqual(
        successes.flatMap((r) => [`${r.key}.jpg`, `${r.key}.txt`, `${r.key}.json`]),
      );
      for (const r of successes) {
        const of = (ext: string) => members.find((m) => m.name === `${r.key}.${ext}`)!.data;
        expect(of('jpg').equals(r.image!.data)).toBe(true);
        expect(of('txt').toString()).toBe(r.caption);
        expect(JSON.parse(of('json').toString())).toEqual(r.meta);
      }
    }

    if (format === 'files') {
      const files = (await readdir(join(dir, '00000'))).sort();
      expect(files).toEqual(successes.flatMap((r) => [`${r.key}.jpg`, `${r.key}.json`, `${r.key}.txt`]).sort());
      for (const r of successes) {
        const base = join(dir, '00000', r.key);
        expect((await readFile(`${base}.jpg`)).equals(r.image!.data)).toBe(true);
        expect(await readFile(`${base}.txt`, 'utf8')).toBe(r.caption);
        const json = await readFile(`${base}.json`, 'utf8');
        expect(json).toBe(JSON.stringify(r.meta, null, 4));
      }
    }

    if (format !== 'dummy') {
      const { rows, columns } = await readParquet(join(dir, '00000.parquet'));
      const names = metaColumns.map((c) => c.name);
      expect(columns.map((c) => c.name)).toEqual(format === 'parquet' ? [...names, 'jpg'] : names);
      expect(columns.find((c) => c.name === 'width')!.type).toBe('INT32');
      expect(columns.find((c) => c.name === 'extra')!.type).toBe('INT64');
      expect(columns.find((c) => c.name === 'url')!.convertedType).toBe('UTF8');
      if (format === 'parquet') expect(columns.at(-1)).toMatchObject({ type: 'BYTE_ARRAY', convertedType: undefined });
      expect(rows).toHaveLength(N + M);
      for (const [i, r] of recs.entries()) {
        const row = rows[i]!;
        expect(row.key).toBe(r.key);
        expect(row.status).toBe(r.status);
        expect(row.error_message).toBe(r.meta.error_message);
        expect(row.reason).toBe(r.meta.reason);
        expect(row.width).toBe(r.meta.width);
        expect(row.original_width).toBe(r.meta.original_width);
        expect(row.extra).toBe(BigInt(r.meta.extra as number));
        expect(row.caption).toBe(r.caption);
        if (format === 'parquet') {
          if (r.status === 'success') expect(Buffer.from(row.jpg as Uint8Array).equals(r.image!.data)).toBe(true);
          else expect(row.jpg).toBeNull();
        }
      }
      const failed = rows.filter((row) => row.status !== 'success');
      expect(failed).toHaveLength(M);
      for (const row of failed) {
        expect(row.error_message).toEqual(expect.any(String));
        expect(row.reason).toEqual(expect.any(String));
        expect(row.width).toBeNull();
      }
    }
  });

  it('writes an empty shard', async () => {
    const dir = await tempDir();
    await writeShard(dir, format, []);
    expect((await readdir(dir)).sort()).toEqual(expectedFiles[format]);
    if (format === 'webdataset') expect(await readTarMembers(join(dir, '00000.tar'))).toEqual([]);
    if (format !== 'dummy') expect((await readParquet(join(dir, '00000.parquet'))).rows).toEqual([]);
  });

  it('abort leaves nothing', async () => {
    const dir = await tempDir();
    const writer = await openShardWriter({
      outputFolder: dir,
      shardName: '00003',
      outputFormat: format,
      encodeFormat: 'jpg',
      metaColumns,
    });
    for (const r of records()) await writer.write(r);
    await writer.abort();
    await writer.abort();
    expect(await readdir(dir)).toEqual([]);
    await expect(writer.write(successRecord('000000000'))).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('a crash before close leaves only temporaries, which removePartialShards cleans', async () => {
    const dir = await tempDir();
    await writeShard(dir, format, records().slice(0, 4), '00000'); // a finished neighbour
    const writer = await openShardWriter({
      outputFolder: dir,
      shardName: '00001',
      outputFormat: format,
      encodeFormat: 'jpg',
      metaColumns,
      durable: false,
    });
    for (const r of records()) await writer.write(r);
    // simulated SIGKILL: never closed

    const names = await readdir(dir);
    for (const final of ['00001.tar', '00001.parquet', '00001', '00001_stats.json']) expect(names).not.toContain(final);
    const done = await listDoneShards(dir);
    expect(done).toEqual(new Set([0]));

    const removed = await removePartialShards(dir, done);
    const partials = names.filter((n) => n.startsWith('00001'));
    expect(removed.map((p) => p.slice(dir.length + 1))).toEqual(partials.sort());
    expect((await readdir(dir)).sort()).toEqual(expectedFiles[format]);
    await writer.abort(); // let go of open handles
  });

  it('reopening a shard invalidates its old stats until the new close', async () => {
    const dir = await tempDir();
    await writeShard(dir, format, records().slice(0, 2));
    expect(await listDoneShards(dir)).toEqual(new Set([0]));
    const writer = await openShardWriter({
      outputFolder: dir,
      shardName: '00000',
      outputFormat: format,
      encodeFormat: 'jpg',
      metaColumns,
      durable: false,
    });
    expect(await listDoneShards(dir)).toEqual(new Set());
    const stats = new StatsCollector();
    for (const r of records()) {
      await writer.write(r);
      stats.add(r);
    }
    await writer.close(stats.finish());
    expect(await listDoneShards(dir)).toEqual(new Set([0]));
    if (format !== 'dummy') expect((await readParquet(join(dir, '00000.parquet'))).rows).toHaveLength(N + M);
  });
});

describe('openShardWriter', () => {
  it('writes the stats file after the data files (completion marker last), durably by default', async () => {
    const dir = await tempDir();
    const writer = await openShardWriter({
      outputFolder: dir,
      shardName: '00000',
      outputFormat: 'webdataset',
      encodeFormat: 'jpg',
      metaColumns,
    });
    for (const r of records()) await writer.write(r);
    await writer.close(new StatsCollector().finish());
    const [tar, parquet, stats] = await Promise.all(
      ['00000.tar', '00000.parquet', '00000_stats.json'].map((n) => stat(join(dir, n))),
    );
    expect(stats!.ctimeMs).toBeGreaterThanOrEqual(tar!.ctimeMs);
    expect(stats!.ctimeMs).toBeGreaterThanOrEqual(parquet!.ctimeMs);
    await expect(writer.write(successRecord('000000099'))).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('streams the tar to disk while writing: no shard held in memory', async () => {
    const dir = await tempDir();
    const writer = await openShardWriter({
      outputFolder: dir,
      shardName: '00000',
      outputFormat: 'webdataset',
      encodeFormat: 'jpg',
      metaColumns,
      durable: false,
    });
    for (let i = 0; i < 30; i++) await writer.write(successRecord(String(i).padStart(9, '0'), { size: 100_000 }));
    // everything but the last sample or so (stream buffers) is already in the temporary file
    expect((await stat(join(dir, '00000.tar.partial'))).size).toBeGreaterThan(27 * 100_000);
    await writer.close(new StatsCollector().finish());
    expect((await readTarMembers(join(dir, '00000.tar'))).length).toBe(60);
  });

  it('keeps the image format of the record for the member extension', async () => {
    const dir = await tempDir();
    const writer = await openShardWriter({
      outputFolder: dir,
      shardName: '00000',
      outputFormat: 'webdataset',
      encodeFormat: 'webp',
      metaColumns,
      durable: false,
    });
    const record = successRecord('000000000');
    record.image = { data: Buffer.from('png bytes'), format: 'png' };
    await writer.write(record);
    await writer.close(new StatsCollector().finish());
    expect((await readTarMembers(join(dir, '00000.tar'))).map((m) => m.name)).toEqual([
      '000000000.png',
      '000000000.json',
    ]);
  });

  it('refuses bad options with the option named', async () => {
    const dir = await tempDir();
    const base = {
      outputFolder: dir,
      shardName: '00000',
      outputFormat: 'parquet' as const,
      encodeFormat: 'jpg' as const,
      metaColumns,
    };
    await expect(openShardWriter({ ...base, outputFormat: 'tfrecord' as OutputFormat })).rejects.toThrow(
      /for outputFormat/,
    );
    await expect(openShardWriter({ ...base, shardName: '0.0' })).rejects.toThrow(/for shardName/);
    await expect(
      openShardWriter({ ...base, metaColumns: [...metaColumns, { name: 'jpg', type: 'STRING' }] }),
    ).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
    await expect(openShardWriter({ ...base, metaColumns: [...metaColumns, metaColumns[0]!] })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses keys with dots in every format', async () => {
    const dir = await tempDir();
    for (const outputFormat of OUTPUT_FORMATS) {
      const writer = await openShardWriter({
        outputFolder: dir,
        shardName: '00000',
        outputFormat,
        encodeFormat: 'jpg',
        metaColumns,
        durable: false,
      });
      await expect(writer.write(failedRecord('a.b'))).rejects.toMatchObject({ code: 'INTERNAL' });
      await writer.abort();
    }
  });
});

describe('listDoneShards / removePartialShards', () => {
  it('lists ids with a stats file; removes temporaries and data of unfinished shards only', async () => {
    const dir = await tempDir();
    expect(await listDoneShards(join(dir, 'missing'))).toEqual(new Set());
    expect(await removePartialShards(join(dir, 'missing'), new Set())).toEqual([]);
    const { mkdir, writeFile } = await import('node:fs/promises');
    const files = [
      '00000.tar',
      '00000.parquet',
      '00000_stats.json',
      '00000.tar.partial', // done shard with a stray temporary
      '00001.tar',
      '00001.parquet', // finished data, no stats: crash between rename and stats
      '00002.parquet.partial',
      '00002_stats.json.partial',
      'notes.txt',
      '_tmp.feather',
      'abc.tar',
    ];
    for (const f of files) await writeFile(join(dir, f), 'x');
    await mkdir(join(dir, '00003.partial'));
    await writeFile(join(dir, '00003.partial', '000030000.jpg'), 'x');
    await mkdir(join(dir, '00004'));
    await mkdir(join(dir, '00000'));
    const done = await listDoneShards(dir);
    expect(done).toEqual(new Set([0]));
    const removed = await removePartialShards(dir, done);
    expect(removed.map((p) => p.slice(dir.length + 1))).toEqual(
      [
        '00000.tar.partial',
        '00001.parquet',
        '00001.tar',
        '00002.parquet.partial',
        '00002_stats.json.partial',
        '00003.partial',
        '00004',
      ].sort(),
    );
    expect((await readdir(dir)).sort()).toEqual([
      '00000',
      '00000.parquet',
      '00000.tar',
      '00000_stats.json',
      '_tmp.feather',
      'abc.tar',
      'notes.txt',
    ]);
  });
});
