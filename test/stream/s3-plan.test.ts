import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openByteSource, readBytes } from '../../src/io/byte-source.js';
import { s3Client, s3Delete, s3List, s3Put, s3ReadSmall } from '../../src/io/s3.js';
import { candidatesOf, loadPlan, readPlan, writePlan, type Candidate, type Plan } from '../../src/select/index.js';
import { startS3Server, type S3Server } from '../helpers/services.js';
import { tempDir } from '../helpers/tmp.js';
import { folderSamples, run } from './cli-run.js';
import { streamWorld } from './world.js';

/** Plan folders under `s3://` on moto's S3 server (started here at a free port): written, read in place, refused. */

const world = streamWorld({ counts: { red: 120, blue: 120 }, deadFraction: 0.3, latencyMs: [2, 10] });
let s3: S3Server;
/** Every GetObject this process sends: the object and the bytes its Range asks for (undefined: the whole object). */
const gets: { key: string; bytes: number | undefined }[] = [];

beforeAll(async () => {
  s3 = await startS3Server(); // sets the AWS environment of this process, which the CLI children inherit
  await s3.createBucket('plans');
  (await s3Client()).middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'GetObjectCommand') {
        const input = args.input as { Key: string; Range?: string };
        const range = /^bytes=(\d+)-(\d+)$/.exec(input.Range ?? '');
        gets.push({ key: input.Key, bytes: range ? Number(range[2]) - Number(range[1]) + 1 : undefined });
      }
      return next(args);
    },
    { step: 'initialize', name: 'countGets' },
  );
}, 600_000);
afterAll(async () => {
  await s3?.stop();
});

const objectText = async (url: string) => String(await s3ReadSmall(url, 64 << 20));

async function planTo(spec: string, output: string) {
  const r = await run(['plan', spec, '--output', output]);
  expect(r.code, r.stderr).toBe(0);
  return r;
}

describe('clipstream plan --output s3://…', () => {
  test('writes the plan a local run writes (same id, same candidates in the same order), plan.json last; stream reads it in place', async () => {
    const w = world();
    const dir = await tempDir();
    const spec = await w.spec([
      { name: 'red', count: 40 },
      { name: 'blue', count: 30 },
    ]);
    const local = join(dir, 'plan');
    await planTo(spec, local);
    const r = await planTo(spec, 's3://plans/runs/a');
    expect(r.stdout).toMatch(/plan [0-9a-f]+ written to s3:\/\/plans\/runs\/a in [\d.]+s: .* MB in the bucket/);

    const names = (await readdir(local)).sort();
    expect(names).toEqual(['candidates.jsonl', 'plan.json', 'positions-0000.bin', 'positions-0001.bin']);
    expect(await s3List('s3://plans/runs/a')).toEqual(names);
    for (const name of names.filter((n) => n !== 'plan.json')) {
      const { source } = await openByteSource(`s3://plans/runs/a/${name}`);
      expect(Buffer.from(await readBytes(source, 0, source.size)), name).toEqual(await readFile(join(local, name)));
    }
    const header = (text: string) => {
      const { created_at: _, ...rest } = JSON.parse(text) as { created_at: string };
      return rest;
    };
    expect(header(await objectText('s3://plans/runs/a/plan.json'))).toEqual(
      header(await readFile(join(local, 'plan.json'), 'utf8')),
    );

    // Read back in place: the same plan, the same candidates in the same order (its index checked as a local one's).
    const [fromS3, fromDisk] = [await loadPlan('s3://plans/runs/a'), await loadPlan(local)];
    try {
      expect(fromS3.header.id).toBe(fromDisk.header.id);
      expect(fromS3.header.queries.map((q) => q.planned)).toEqual(fromDisk.header.queries.map((q) => q.planned));
      expect(await candidatesOf(fromS3)).toEqual(await candidatesOf(fromDisk));
    } finally {
      await fromS3.close?.();
      await fromDisk.close?.();
    }

    // stream from the S3 plan delivers what it delivers from the local folder, sample for sample.
    const flags = ['--number-sample-per-shard', '10', '--rank', '1', '--world-size', '2'];
    const a = await run(['stream', local, '--output-folder', join(dir, 'from-disk'), ...flags]);
    expect(a.code, a.stderr).toBe(0);
    const b = await run(['stream', 's3://plans/runs/a', '--output-folder', join(dir, 'from-s3'), ...flags]);
    expect(b.code, b.stderr).toBe(0);
    const samples = await folderSamples(join(dir, 'from-s3'));
    expect(samples).toHaveLength(35);
    expect(samples).toEqual(await folderSamples(join(dir, 'from-disk')));

    // Planned again to the same prefix with fewer queries: the earlier plan's objects are gone, none is mixed in.
    const one = await w.spec([{ name: 'red', count: 10 }]);
    await planTo(one, 's3://plans/runs/a');
    expect(await s3List('s3://plans/runs/a')).toEqual(['candidates.jsonl', 'plan.json', 'positions-0000.bin']);
    const again = await loadPlan('s3://plans/runs/a');
    expect(again.header.queries.map((q) => q.name)).toEqual(['red']);
    await again.close?.();
  }, 180_000);

  test('a plan read from S3 fetches the blocks it reads, not the files', async () => {
    const w = world();
    const dir = await tempDir();
    await planTo(await w.spec([{ name: 'red', count: 4 }]), join(dir, 'small'));
    const base = await readPlan(join(dir, 'small'));
    await base.close?.();
    // 20 000 candidates a query (~4 MB of lines): written from arrays, staged and published by writePlan.
    const N = 20_000;
    const made = (q: number): Candidate[] =>
      Array.from({ length: N }, (_, i) => ({
        id: q * N + i,
        similarity: 1 - i / N,
        url: `http://127.0.0.1:9/${q}/${i}.jpg`,
        caption: `caption ${q} ${i} ${'x'.repeat(i % 300)}`,
        metadata: { i },
      }));
    const lists = [made(0), made(1)];
    const big: Plan = {
      header: {
        ...base.header,
        queries: [0, 1].map((q) => ({ ...base.header.queries[0]!, name: `q${q}`, planned: N })),
      },
      candidates: lists,
      warnings: [],
    };
    expect(await writePlan('s3://plans/big', big)).toBeGreaterThan(4 << 20);
    const { source } = await openByteSource('s3://plans/big/candidates.jsonl');
    expect(source.size).toBeGreaterThan(4 << 20);

    gets.length = 0;
    const plan = await readPlan('s3://plans/big');
    try {
      for (const [q, i] of [
        [0, 0],
        [1, 19_999],
        [0, 10_001],
        [1, 7],
        [0, 10_002],
      ] as const) {
        expect(await plan.candidates[q]!.at(i)).toEqual(lists[q]![i]);
      }
    } finally {
      await plan.close?.();
    }
    const ranged = gets.filter((g) => g.key !== 'big/plan.json');
    expect(ranged.every((g) => g.bytes !== undefined && g.bytes <= 256 * 1024)).toBe(true);
    // 5 reads: 4 blocks of positions and 4 of lines (10 001 and 10 002 share theirs), each one GET.
    expect(ranged).toHaveLength(8);
    expect(ranged.reduce((sum, g) => sum + g.bytes!, 0)).toBeLessThan(source.size / 3);

    // A stream asks for a window of candidates at once: the reads of one block share its one GET.
    gets.length = 0;
    const again = await readPlan('s3://plans/big');
    try {
      const window = await Promise.all(Array.from({ length: 200 }, (_, i) => again.candidates[1]!.at(i)));
      expect(window).toEqual(lists[1]!.slice(0, 200));
    } finally {
      await again.close?.();
    }
    expect(gets.filter((g) => g.key !== 'big/plan.json')).toHaveLength(2); // a block of positions, one of lines
  }, 120_000);

  test('a missing bucket, a prefix without plan.json (an incomplete plan), a plan of another index: clear errors, exit 2', async () => {
    const w = world();
    const spec = await w.spec([{ name: 'red', count: 6 }]);

    const noBucket = await run(['stream', 's3://nosuchbucket/plan', '--output', '-']);
    expect(noBucket.code).toBe(2);
    expect(noBucket.stderr).toMatch(/the bucket "nosuchbucket" of s3:\/\/nosuchbucket\/plan does not exist/);
    expect(noBucket.stderr).not.toMatch(/\n\s+at /);

    const writeNoBucket = await run(['plan', spec, '--output', 's3://nosuchbucket/plan']);
    expect(writeNoBucket.code).toBe(2);
    expect(writeNoBucket.stderr).toMatch(/the bucket "nosuchbucket" of s3:\/\/nosuchbucket\/plan does not exist/);

    const empty = await run(['stream', 's3://plans/nothing/here', '--output', '-']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(
      /s3:\/\/plans\/nothing\/here holds no plan: there is no s3:\/\/plans\/nothing\/here\/plan\.json/,
    );

    // Candidates there but no plan.json (killed while publishing): the plan is incomplete, and said so.
    await planTo(spec, 's3://plans/cut');
    await s3Delete('s3://plans/cut', ['plan.json']);
    const cut = await run(['stream', 's3://plans/cut', '--output', '-']);
    expect(cut.code).toBe(2);
    expect(cut.stderr).toMatch(/s3:\/\/plans\/cut holds no plan: .*its writing has not completed/);

    // A plan made for another index (its header's row count differs from the index's) is refused as a local one is.
    await planTo(spec, 's3://plans/other');
    const header = JSON.parse(await objectText('s3://plans/other/plan.json')) as { index: { count: number } };
    header.index.count += 1;
    await s3Put('s3://plans/other/plan.json', { bytes: JSON.stringify(header) });
    const other = await run(['serve', '--spec', 'x=s3://plans/other', '--port', '0']);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/the plan s3:\/\/plans\/other was made for another index/);

    // A positions object that disagrees with plan.json is refused naming it.
    await planTo(spec, 's3://plans/short');
    await s3Put('s3://plans/short/positions-0000.bin', { bytes: new Uint8Array(12) });
    const short = await run(['stream', 's3://plans/short', '--output', '-']);
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/s3:\/\/plans\/short\/positions-0000\.bin holds 1 positions but the plan says/);
  }, 180_000);
});
