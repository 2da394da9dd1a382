import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { readTarSamples } from '../../src/io/tar-read.js';
import { tempDir } from '../helpers/tmp.js';
import { CLI, folderSamples, run } from './cli-run.js';
import { streamWorld } from './world.js';

const world = streamWorld({ counts: { red: 150, blue: 150 }, deadFraction: 0.3, latencyMs: [5, 30] });

describe('clipstream plan', () => {
  test('prints requested / available / planned per query and warns when a query cannot be satisfied', async () => {
    const w = world();
    const dir = await tempDir();
    const spec = await w.spec([
      { name: 'red', count: 40 },
      { name: 'blue', count: 500 },
    ]);
    const r = await run(['plan', spec, '--output', join(dir, 'plan'), '--partitions', '4']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/red\s+40\s+150\s+120\s+40\s+10/);
    expect(r.stdout).toMatch(/blue\s+500\s+150\s+150\s+500\s+125/);
    expect(r.stderr).toMatch(/warning: query blue: 500 requested but only 150 candidates/);
    expect((await stat(join(dir, 'plan', 'candidates.jsonl'))).size).toBeGreaterThan(0);
  });

  test('a bad spec names the field', async () => {
    const w = world();
    const spec = await w.spec([{ name: 'red', count: 0 }]);
    const r = await run(['plan', spec, '--output', join(await tempDir(), 'p')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/queries\[0\]\.count/);
    expect(r.stderr).not.toMatch(/at .*\.js/);
  });

  test('every command refuses an fsspec URL for a spec, plan or index, naming the argument or flag', async () => {
    const out = join(await tempDir(), 'p');
    const indicesPaths = join(await tempDir(), 'indices.json');
    await writeFile(indicesPaths, JSON.stringify({ laion: { indice_folder: 's3://bucket/laion' } }));
    const cases: [string[], RegExp][] = [
      [
        ['plan', 'gs://bucket/spec.yaml', '--output', out],
        /local path for <spec> but received "gs:\/\/bucket\/spec\.yaml"/,
      ],
      [['stream', 'gs://bucket/plan', '--output', '-'], /local path or an s3:\/\/ URL for <spec-or-plan>/],
      [
        ['serve', '--spec', 'train=gs://bucket/spec.yaml', '--port', '0'],
        /local path or an s3:\/\/ URL for --spec train/,
      ],
      [['serve', '--index', 'laion=hf://org/index', '--port', '0'], /local path or an http\(s\) URL for --index laion/],
      [
        ['query', '--index', 's3://bucket/index', '--embedding-file', 'q.npy'],
        /local path or an http\(s\) URL for --index/,
      ],
      [
        ['query', '--index', 'idx', '--embedding-file', 'gs://b/q.npy'],
        /local path or an http\(s\) URL for --embedding-file/,
      ],
      [['plan', 'file://relative/spec.yaml', '--output', out], /local path for <spec>.*file:\/\/\/absolute\/path/],
      [['plan', 'spec.yaml', '--output', 'gs://bucket/plan'], /local path or an s3:\/\/ URL for --output/],
      [
        ['stream', 'spec.yaml', '--output-folder', 'gs://bucket/shards'],
        /local path or an s3:\/\/ URL for --output-folder/,
      ],
      [
        ['serve', '--indices-paths', indicesPaths, '--port', '0'],
        /local path or an http\(s\) URL for index laion in .*indices\.json/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    // an http(s) embedding file is read over HTTP: not refused as a path (the missing index fails first)
    const r = await run(['query', '--index', join(out, 'none'), '--embedding-file', 'https://example.com/q.npy']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).not.toMatch(/local path/);
  });
});

describe('clipstream stream', () => {
  test('SIGKILL at a random moment, then --resume: the union is exact, no truncated tar', async () => {
    const w = world();
    const dir = await tempDir();
    const plan = join(dir, 'plan');
    // A low concurrency makes the run last long enough to be killed in the middle.
    const spec = await w.spec(
      [
        { name: 'red', count: 90 },
        { name: 'blue', count: 60 },
      ],
      { fetch: { allow_private_networks: true, concurrency: 3 } },
    );
    expect((await run(['plan', spec, '--output', plan])).code).toBe(0);
    const reference = join(dir, 'reference');
    const started = performance.now();
    const ref = await run(['stream', plan, '--output-folder', reference, '--number-sample-per-shard', '20']);
    const duration = performance.now() - started;
    expect(ref.code, ref.stderr).toBe(0);
    expect(ref.stdout).toMatch(/done: 150\/150 samples in 8 shard\(s\)/);
    const expected = await folderSamples(reference);
    expect(expected).toHaveLength(150);

    // A random moment: after 1 to 5 of the 8 shards are complete, plus up to a shard's time (from the reference run).
    // On a loaded machine the run may end before that: then again, killed as soon as a shard is complete.
    let out = '';
    let killed: Awaited<ReturnType<typeof run>> | undefined;
    for (let attempt = 0; attempt < 3 && killed?.signal !== 'SIGKILL'; attempt++) {
      out = join(dir, `out${attempt}`);
      const shards = attempt === 0 ? 1 + Math.floor(Math.random() * 5) : 1;
      const shardsDone = async () => {
        const progress = await readFile(join(out, '_stream.json'), 'utf8').then(
          (t) => JSON.parse(t) as { shards: number },
          () => ({ shards: 0 }),
        );
        return progress.shards >= shards;
      };
      killed = await run(['stream', plan, '--output-folder', out, '--number-sample-per-shard', '20'], {
        killWhen: shardsDone,
        killDelayMs: attempt === 0 ? Math.floor(Math.random() * (duration / 8)) : 0,
      });
    }
    expect(killed!.signal, `not killed: ${killed!.stdout}`).toBe('SIGKILL');
    const again = await run(['stream', plan, '--output-folder', out, '--number-sample-per-shard', '20']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--resume/);
    const resumed = await run(['stream', plan, '--output-folder', out, '--number-sample-per-shard', '20', '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await folderSamples(out)).toEqual(expected);
    expect((await readdir(out)).filter((f) => f.includes('partial'))).toEqual([]);
    const manifest = (await readFile(join(out, 'manifest.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { key: string });
    expect(manifest.map((m) => m.key)).toEqual(expected.map((e) => e.split(':')[0]));
  }, 180_000);

  test('a new stream into a folder that holds other files (an earlier download) is refused, and they are kept', async () => {
    const w = world();
    const dir = await tempDir();
    const spec = await w.spec([{ name: 'red', count: 5 }], { fetch: { allow_private_networks: true } });
    const out = join(dir, 'laion_dl');
    await mkdir(out);
    const kept = ['00000.tar', '00000.parquet', '00000_stats.json', 'manifest.jsonl'];
    for (const name of kept) await writeFile(join(out, name), 'earlier data');
    const r = await run(['stream', spec, '--output-folder', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /already holds files \(.*00000\.tar.*\) and no _stream\.json: it is not a stream's folder/,
    );
    expect(r.stderr).toMatch(/empty or new folder/);
    expect((await readdir(out)).sort()).toEqual([...kept].sort());
    for (const name of kept) expect(await readFile(join(out, name), 'utf8')).toBe('earlier data');
  });

  test('--output - writes one webdataset tar with a resume state per sample', async () => {
    const w = world();
    const spec = await w.spec([{ name: 'blue', count: 12 }]);
    const child = spawn(process.execPath, [CLI, 'stream', spec, '--output', '-', '--rank', '1', '--world-size', '2'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((r) => child.on('close', r));
    const dir = await tempDir();
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'out.tar'), Buffer.concat(chunks));
    const samples = [];
    for await (const s of readTarSamples(join(dir, 'out.tar'))) samples.push(s);
    expect(samples).toHaveLength(6);
    for (const s of samples) {
      expect(Object.keys(s).sort()).toEqual(['__key__', 'jpg', 'json', 'state', 'txt']);
      expect(JSON.parse(String(s.json))).toMatchObject({ query: 'blue', partition: 1 });
    }
    expect(JSON.parse(String(samples.at(-1)!.state))).toMatchObject({ p: 1, P: 2, delivered: 6 });
  });

  test('--output - into a reader that stops (| head -c 1000): the run ends quietly with status 0 and stops fetching', async () => {
    // issue 15: EPIPE on stdout died with a stack trace
    const w = world();
    // 2 downloads at a time at 5–30 ms each: the whole stream takes ~1.5 s, a second or so after the reader left.
    const spec = await w.spec([{ name: 'red', count: 150 }], {
      fetch: { allow_private_networks: true, timeout: 5, retries: 0, concurrency: 2 },
    });
    const before = w.server.totalRequests();
    const child = spawn(process.execPath, [CLI, 'stream', spec, '--output', '-'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let read = 0;
    let requestsAtClose = 0;
    child.stdout.on('data', (d: Buffer) => {
      read += d.length;
      if (read < 1000 || child.stdout.destroyed) return;
      requestsAtClose = w.server.totalRequests() - before;
      child.stdout.destroy(); // what head does after 1000 bytes: the pipe's read end closes
    });
    const [code, signal] = await new Promise<[number | null, string | null]>((r) =>
      child.on('close', (c, s) => r([c, s])),
    );
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(stderr).not.toMatch(/EPIPE|Error|\n\s+at /);
    await new Promise((r) => setTimeout(r, 200));
    const requests = w.server.totalRequests() - before;
    expect(requests).toBeLessThan(requestsAtClose + 40); // the window in flight, not the other ~150
    expect(requests).toBeLessThan(120);
  });

  test.each(['SIGINT', 'SIGTERM'] as const)(
    'stream SPEC stopped by %s leaves no temporary plan folder behind',
    async (signal) => {
      const w = world();
      const tmp = await tempDir();
      const spec = await w.spec([{ name: 'red', count: 150 }], {
        fetch: { allow_private_networks: true, timeout: 5, retries: 0, concurrency: 2 },
      });
      const child = spawn(process.execPath, [CLI, 'stream', spec, '--output', '-'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, TMPDIR: tmp },
      });
      let planned = false;
      child.stdout.on('data', () => {
        if (planned) return;
        planned = true; // a first sample: the plan's temporary folder exists
        void readdir(tmp).then((names) => {
          expect(names.filter((n) => n.startsWith('clipstream-plan-'))).toHaveLength(1);
          child.kill(signal);
        });
      });
      const [code] = await new Promise<[number | null]>((r) => child.on('close', (c) => r([c])));
      expect(planned).toBe(true);
      expect(code).toBe(signal === 'SIGINT' ? 130 : 143);
      expect((await readdir(tmp)).filter((n) => n.startsWith('clipstream-plan-'))).toEqual([]);
    },
  );

  test('a partition outside the world is refused with its name', async () => {
    const w = world();
    const spec = await w.spec([{ name: 'red', count: 4 }]);
    const r = await run(['stream', spec, '--output', '-', '--rank', '2', '--world-size', '2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/rank 2 is outside the world: --world-size is 2/);
  });
});
