import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openByteSource, readBytes } from '../../src/io/byte-source.js';
import { s3Delete, s3List, s3Put, s3ReadSmall } from '../../src/io/s3.js';
import { readTarSamples } from '../../src/io/tar-read.js';
import { startS3Server, type S3Server } from '../helpers/services.js';
import { tempDir } from '../helpers/tmp.js';
import { folderSamples, run } from './cli-run.js';
import { streamWorld } from './world.js';

/** `clipstream stream --output-folder s3://…` on moto's S3 server (started here at a free port) as into a folder. */

const world = streamWorld({ counts: { red: 150, blue: 150 }, deadFraction: 0.3, latencyMs: [5, 30] });
let s3: S3Server;

beforeAll(async () => {
  s3 = await startS3Server(); // sets the AWS environment of this process, which the CLI children inherit
  await s3.createBucket('streams');
}, 600_000);
afterAll(async () => {
  await s3?.stop();
});

/** Copies every object under the prefix into a new local folder; returns it. */
async function copyDown(prefix: string, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const name of await s3List(prefix, { recursive: true })) {
    const { source } = await openByteSource(`${prefix}/${name}`);
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), await readBytes(source, 0, source.size));
  }
  return dir;
}

/** Every member of every sample, in order: `{key}.{ext}` → bytes. */
async function members(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of (await readdir(dir)).filter((n) => n.endsWith('.tar')).sort()) {
    for await (const s of readTarSamples(join(dir, f))) {
      for (const [ext, value] of Object.entries(s)) {
        if (ext !== '__key__')
          out.set(`${f}/${s.__key__ as string}.${ext}`, Buffer.from(value as Uint8Array).toString('hex'));
      }
    }
  }
  return out;
}

const manifestOf = async (dir: string) =>
  (await readFile(join(dir, 'manifest.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { key: string; time?: string });

async function planOf(dir: string, spec: string): Promise<string> {
  const plan = join(dir, 'plan');
  const r = await run(['plan', spec, '--output', plan]);
  expect(r.code, r.stderr).toBe(0);
  return plan;
}

describe('clipstream stream --output-folder s3://…', () => {
  test('writes the objects a local run writes: same keys, same samples byte for byte, same manifest', async () => {
    const w = world();
    const dir = await tempDir();
    const spec = await w.spec([
      { name: 'red', count: 30 },
      { name: 'blue', count: 20 },
    ]);
    const plan = await planOf(dir, spec);
    const flags = ['--number-sample-per-shard', '20', '--rank', '1', '--world-size', '2'];
    const local = join(dir, 'local');
    const l = await run(['stream', plan, '--output-folder', local, ...flags]);
    expect(l.code, l.stderr).toBe(0);
    const r = await run(['stream', plan, '--output-folder', 's3://streams/same/p1', ...flags]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/done: 25\/25 samples in 2 shard\(s\) in s3:\/\/streams\/same\/p1,/);

    const names = (await readdir(local)).sort();
    expect(names).toEqual([
      '00000.parquet',
      '00000.tar',
      '00000_stats.json',
      '00001.parquet',
      '00001.tar',
      '00001_stats.json',
      '_stream.json',
      'manifest.jsonl',
    ]);
    expect(await s3List('s3://streams/same/p1', { recursive: true })).toEqual(names); // no _manifest/ part left
    const copy = await copyDown('s3://streams/same/p1', join(dir, 'copy'));
    expect(await folderSamples(copy)).toHaveLength(25);
    expect(await members(copy)).toEqual(await members(local));
    const withoutTime = (m: { time?: string }[]) => m.map(({ time: _, ...rest }) => rest);
    expect(withoutTime(await manifestOf(copy))).toEqual(withoutTime(await manifestOf(local)));
    expect(JSON.parse(await readFile(join(copy, '_stream.json'), 'utf8'))).toEqual(
      JSON.parse(await readFile(join(local, '_stream.json'), 'utf8')),
    );

    // Killed while joining the manifest (the parts there, manifest.jsonl not yet): --resume joins it.
    const manifest = await readFile(join(copy, 'manifest.jsonl'), 'utf8');
    const lines = manifest.split(/(?<=\n)/);
    await s3Put('s3://streams/same/p1/_manifest/00000.jsonl', { bytes: lines.slice(0, 20).join('') });
    await s3Put('s3://streams/same/p1/_manifest/00001.jsonl', { bytes: lines.slice(20).join('') });
    await s3Delete('s3://streams/same/p1', ['manifest.jsonl']);
    const resumed = await run(['stream', plan, '--output-folder', 's3://streams/same/p1', ...flags, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/done: 25\/25 samples \(resumed at 25\) in 2 shard\(s\)/);
    expect(await s3List('s3://streams/same/p1', { recursive: true })).toEqual(names);
    expect(String(await s3ReadSmall('s3://streams/same/p1/manifest.jsonl', 1 << 20))).toEqual(manifest);
  }, 120_000);

  test('SIGKILL at a random moment, then --resume to the same prefix: the union is exact, no object half-written', async () => {
    const w = world();
    const dir = await tempDir();
    // A low concurrency makes the run last long enough to be killed in the middle.
    const spec = await w.spec(
      [
        { name: 'red', count: 90 },
        { name: 'blue', count: 60 },
      ],
      { fetch: { allow_private_networks: true, concurrency: 3 } },
    );
    const plan = await planOf(dir, spec);
    const reference = join(dir, 'reference');
    const started = performance.now();
    const ref = await run(['stream', plan, '--output-folder', reference, '--number-sample-per-shard', '20']);
    const duration = performance.now() - started;
    expect(ref.code, ref.stderr).toBe(0);
    const expected = await folderSamples(reference);
    expect(expected).toHaveLength(150);

    // As the local test: killed after 1 to 5 of the 8 shards plus up to a shard's time; on a loaded machine that
    // ends too late, then again as soon as a shard is complete.
    let out = '';
    let killed: Awaited<ReturnType<typeof run>> | undefined;
    for (let attempt = 0; attempt < 3 && killed?.signal !== 'SIGKILL'; attempt++) {
      out = `s3://streams/kill/out${attempt}`;
      const shards = attempt === 0 ? 1 + Math.floor(Math.random() * 5) : 1;
      const progressUrl = `${out}/_stream.json`;
      const shardsDone = async () => {
        try {
          const bytes = await s3ReadSmall(progressUrl, 1 << 20);
          return bytes !== undefined && (JSON.parse(String(bytes)) as { shards: number }).shards >= shards;
        } catch {
          return false; // moto answers an object being replaced with 0 bytes at times: the next poll tells
        }
      };
      killed = await run(['stream', plan, '--output-folder', out, '--number-sample-per-shard', '20'], {
        killWhen: shardsDone,
        killDelayMs: attempt === 0 ? Math.floor(Math.random() * (duration / 8)) : 0,
      });
    }
    expect(killed!.signal, `not killed: ${killed!.stdout}`).toBe('SIGKILL');
    // What the kill left: every tar there is whole (an object is uploaded whole or not at all).
    const left = await copyDown(out, join(dir, 'left'));
    const leftSamples = await folderSamples(left);
    expect(leftSamples.length % 20).toBe(0);
    expect(leftSamples).toEqual(expected.slice(0, leftSamples.length));

    const again = await run(['stream', plan, '--output-folder', out, '--number-sample-per-shard', '20']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--resume/);
    const resumed = await run(['stream', plan, '--output-folder', out, '--number-sample-per-shard', '20', '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const names = await s3List(out, { recursive: true });
    expect(names.filter((n) => n.startsWith('_manifest/') || n.includes('partial'))).toEqual([]);
    expect(names).toEqual((await readdir(reference)).sort());
    const copy = await copyDown(out, join(dir, 'copy'));
    expect(await folderSamples(copy)).toEqual(expected);
    expect((await manifestOf(copy)).map((m) => m.key)).toEqual(expected.map((e) => e.split(':')[0]));
  }, 240_000);

  test('a missing bucket (exit 2) and missing credentials (exit 1) are clear errors naming the URL', async () => {
    const w = world();
    const spec = await w.spec([{ name: 'red', count: 4 }]);
    const r = await run(['stream', spec, '--output-folder', 's3://nosuchbucket/shards']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/the bucket "nosuchbucket" of s3:\/\/nosuchbucket\/shards does not exist/);
    expect(r.stderr).toMatch(/Create the bucket first/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const home = await tempDir();
    const bare = { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, HOME: home };
    const noCredentials = await run(['stream', spec, '--output-folder', 's3://streams/x'], {
      env: { ...bare, AWS_EC2_METADATA_DISABLED: 'true' },
    });
    expect(noCredentials.code).toBe(1);
    expect(noCredentials.stderr).toMatch(/cannot check s3:\/\/streams\/x: no AWS credentials found/);
  });

  test('the endpoint going away mid-run: exit 1 STORAGE_UNAVAILABLE naming the object, the staging removed', async () => {
    const w = world();
    const dir = await tempDir();
    const spec = await w.spec([{ name: 'red', count: 60 }], {
      fetch: { allow_private_networks: true, concurrency: 3 },
    });
    const plan = await planOf(dir, spec);
    const other = await startS3Server(); // its own server, stopped below; this process keeps the first one's
    Object.assign(process.env, s3.env);
    await other.createBucket('gone');
    const tmp = join(dir, 'tmp');
    await mkdir(tmp);
    let stopped = false;
    const r = await run(['stream', plan, '--output-folder', 's3://gone/out', '--number-sample-per-shard', '20'], {
      env: { ...other.env, TMPDIR: tmp },
      killWhen: async () => {
        // the first shard is being staged: the server goes away before it is uploaded
        if (!stopped && (await readdir(tmp)).some((n) => n.startsWith('clipstream-stream-'))) {
          stopped = true;
          await other.stop();
        }
        return false;
      },
    });
    expect(stopped).toBe(true);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/clipstream: error: cannot (write|delete in) s3:\/\/gone\/out/); // not an internal error (70)
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect((await readdir(tmp)).filter((n) => n.startsWith('clipstream-stream-'))).toEqual([]);
  }, 120_000);
});
