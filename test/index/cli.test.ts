import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { writeColorClip } from '../../src/clip/index.js';
import { writeNpy } from '../../src/io/npy.js';
import { openParquetWriter } from '../../src/io/parquet-write.js';
import { downloadDemoShards } from '../helpers/demo-shards.js';
import { tempDir } from '../helpers/tmp.js';

const run = promisify(execFile);
const cli = (args: string[]) =>
  run(process.execPath, [resolve('dist/cli/main.js'), ...args]).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

describe('clipstream inference → index → query (CLI)', () => {
  it('answers a text query with the red images, best first, as jsonl', async () => {
    const dir = await tempDir();
    await downloadDemoShards(join(dir, 'demo'), 48);
    const model = await writeColorClip(join(dir, 'model'));
    expect(
      (
        await cli([
          'inference',
          '--input',
          join(dir, 'demo', 'shards'),
          '--output-folder',
          join(dir, 'emb'),
          '--model',
          model,
        ])
      ).code,
    ).toBe(0);
    const built = await cli(['index', '--embeddings', join(dir, 'emb'), '--output', join(dir, 'idx')]);
    expect(built.code).toBe(0);
    expect(built.stdout).toMatch(/rows × 64 dims .* flat search, recall@10 1\.000/);
    const info = await cli(['index', 'info', join(dir, 'idx')]);
    const rows = /: (\d+) rows × 64 dims/.exec(built.stdout)![1]!;
    expect(info.stdout).toMatch(
      new RegExp(`\\(clipstream index\\)\\n  type +exact search \\(flat\\)\\n  dimension +64\\n  vectors +${rows}\\n`),
    );
    expect(info.stdout).toMatch(/columns +.*url \(string\)/);
    const q = await cli([
      'query',
      '--index',
      join(dir, 'idx'),
      '--text',
      'a red thing',
      '--model',
      model,
      '--num-results',
      '4',
      '--format',
      'jsonl',
    ]);
    expect(q.code).toBe(0);
    const results = q.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: number; similarity: number; colour: string; url: string });
    expect(results).toHaveLength(4);
    expect(results.every((r) => r.colour === 'red' && typeof r.id === 'number' && r.url.startsWith('http'))).toBe(true);
    expect(results.map((r) => r.similarity)).toEqual([...results.map((r) => r.similarity)].sort((a, b) => b - a));

    const blue = join(dir, 'blue.png');
    await sharp({ create: { width: 30, height: 20, channels: 3, background: '#0000ff' } })
      .png()
      .toFile(blue);
    const byImage = await cli([
      'query',
      '--index',
      join(dir, 'idx'),
      '--image',
      blue,
      '--model',
      model,
      '--num-results',
      '2',
      '--format',
      'jsonl',
    ]);
    expect(
      byImage.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { colour: string }).colour),
    ).toEqual(['blue', 'blue']);
    const table = await cli([
      'query',
      '--index',
      join(dir, 'idx'),
      '--text',
      'green',
      '--model',
      model,
      '--num-results',
      '2',
    ]);
    expect(table.stdout).toMatch(/^similarity\s+id\s+url\s+caption\n0\.9\d+\s+\d+\s+http.*green/);
  });

  it('query into a reader that stops (| head -c 100) ends quietly with status 0', async () => {
    // issue 15: EPIPE on stdout killed the process with a stack trace
    const dir = await tempDir();
    const emb = join(dir, 'emb');
    await mkdir(join(emb, 'img_emb'), { recursive: true });
    await mkdir(join(emb, 'metadata'), { recursive: true });
    const rows = Array.from({ length: 3000 }, (_, i) =>
      Float32Array.from({ length: 8 }, (_, j) => (j === i % 8 ? 1 : 0)),
    );
    await writeNpy(join(emb, 'img_emb', 'img_emb_0.npy'), rows, 8, 'float16');
    const w = await openParquetWriter(join(emb, 'metadata', 'metadata_0.parquet'), [{ name: 'url', type: 'STRING' }]);
    for (let i = 0; i < rows.length; i++) await w.writeRow({ url: `http://example.com/a/long/enough/path/${i}.jpg` });
    await w.close();
    expect((await cli(['index', '--embeddings', emb, '--output', join(dir, 'idx')])).code).toBe(0);
    await writeNpy(join(dir, 'q.npy'), [rows[0]!], 8, 'float32');
    // ~300 KB of jsonl, more than a pipe holds: head leaves while the query still writes
    const query = [
      process.execPath,
      resolve('dist/cli/main.js'),
      'query',
      '--index',
      join(dir, 'idx'),
      '--embedding-file',
      join(dir, 'q.npy'),
      '--num-results',
      '3000',
      '--format',
      'jsonl',
    ];
    const r = await run('bash', [
      '-c',
      `${query.map((a) => `'${a}'`).join(' ')} | head -c 100 > /dev/null; echo "status \${PIPESTATUS[0]}" >&2`,
    ]);
    expect(r.stderr).toBe('status 0\n');
  });

  it('bad queries get one clear line and exit code 2', async () => {
    const dir = await tempDir();
    const noIndex = await cli(['query', '--index', dir, '--embedding-file', join(dir, 'q.npy')]);
    expect(noIndex.code).toBe(2);
    expect(noIndex.stderr).toMatch(/q\.npy|not a clipstream index/);
    const two = await cli(['query', '--index', dir, '--text', 'a', '--embedding-file', 'q.npy']);
    expect(two.code).toBe(2);
    expect(two.stderr).toMatch(/exactly one of --text, --image or --embedding-file/);
    const range = await cli(['query', '--index', dir, '--text', 'a', '--min-similarity', '2']);
    expect(range.stderr).toMatch(/\[-1, 1\] for --min-similarity but received 2/);
    const many = await cli(['query', '--index', dir, '--text', 'a', '--num-results', '4294967311']);
    expect(many.code).toBe(2);
    expect(many.stderr).toMatch(/Expected an integer from 1 to 4294967295 for --num-results but received 4294967311/);
  });
});
