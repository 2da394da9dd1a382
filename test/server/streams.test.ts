import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { tellOnStderr } from '../../src/select/plan-warnings.js';
import { createFetcher } from '../../src/fetch/index.js';
import { readTarSamples } from '../../src/io/tar-read.js';
import { candidatesOf, loadPlan, type Plan } from '../../src/select/index.js';
import { createServer } from '../../src/server/app.js';
import { openServedStream, servedStream, type ServedStream } from '../../src/server/streams.js';
import { createStreamContext } from '../../src/stream/index.js';
import { ClipstreamError } from '../../src/core/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { streamWorld } from '../stream/world.js';

const world = streamWorld({ counts: { red: 120, blue: 120 }, deadFraction: 0.3 });

let base = '';
let close: () => Promise<void> = async () => {};
let served: ServedStream;
let big: ServedStream;

beforeAll(async () => {
  const w = world();
  const plan = await loadPlan(
    await w.spec([
      { name: 'red', count: 40 },
      { name: 'blue', count: 21 },
    ]),
  );
  const context = await createStreamContext(plan);
  served = servedStream(plan, context);
  // Uncompressed 512 px PNGs (~790 KB each): a few fill the socket buffers, so back-pressure shows.
  const bigPlan = await loadPlan(
    await w.spec([{ name: 'red', count: 60 }], {
      image: { size: 512, resize_mode: 'border', encode_format: 'png', encode_quality: 0 },
    }),
  );
  const bigContext = await createStreamContext(bigPlan);
  big = servedStream(bigPlan, bigContext);
  const fetcher = createFetcher({});
  const app = createServer({
    indices: new Map(),
    fetcher,
    streams: new Map([
      ['colours', served],
      ['big', big],
    ]),
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  close = async () => {
    await app.close();
    await fetcher.close();
    await context.close();
    await bigContext.close();
  };
});
afterAll(() => close());

async function tarSamples(
  url: string,
): Promise<{ headers: Record<string, unknown>; samples: Record<string, unknown>[] }> {
  const res = await request(url);
  expect(res.statusCode).toBe(200);
  const body = Buffer.from(await res.body.arrayBuffer());
  const dir = await tempDir();
  await writeFile(join(dir, 'p.tar'), body);
  const samples = [];
  for await (const s of readTarSamples(join(dir, 'p.tar'))) samples.push(s as Record<string, unknown>);
  return { headers: res.headers, samples };
}

describe('stream endpoints', () => {
  test('GET /streams lists the stream with its queries; /info gives the partition sizes', async () => {
    const list = (await (await request(`${base}/streams`)).body.json()) as {
      streams: { name: string; queries: { name: string; requested: number }[] }[];
    };
    expect(list.streams.map((s) => s.name)).toEqual(['colours', 'big']);
    expect(list.streams[0]!.queries.map((q) => [q.name, q.requested])).toEqual([
      ['red', 40],
      ['blue', 21],
    ]);
    const info = await (await request(`${base}/streams/colours/info?partitions=4`)).body.json();
    expect(info).toEqual({
      partitions: 4,
      samples_per_partition: 15,
      total: 60,
      queries: [
        { name: 'red', quota: 10 },
        { name: 'blue', quota: 5 },
      ],
    });
  });

  test('each partition is one webdataset tar; partitions are equal and disjoint; X-Clipstream-Samples says the count', async () => {
    const ids = new Set<number>();
    for (let p = 0; p < 3; p++) {
      const { headers, samples } = await tarSamples(`${base}/streams/colours/${p}.tar?partitions=3`);
      expect(headers['content-type']).toBe('application/x-tar');
      expect(headers['x-clipstream-samples']).toBe('20');
      expect(samples).toHaveLength(20); // floor(40/3) + floor(21/3)
      for (const s of samples) {
        const json = JSON.parse(String(s.json)) as { id: number; partition: number };
        expect(json.partition).toBe(p);
        ids.add(json.id);
        expect(Object.keys(s).sort()).toEqual(['__key__', 'jpg', 'json', 'state', 'txt']);
      }
    }
    expect(ids.size).toBe(60);
  });

  test('state= resumes after the given sample: the two halves are the whole', async () => {
    const whole = (await tarSamples(`${base}/streams/colours/1.tar?partitions=2&epoch=3`)).samples;
    const state = String(whole[11]!.state);
    const rest = await tarSamples(
      `${base}/streams/colours/1.tar?partitions=2&epoch=3&state=${encodeURIComponent(state)}`,
    );
    expect(rest.headers['x-clipstream-samples']).toBe(String(whole.length - 12));
    expect(rest.samples.map((s) => s.__key__)).toEqual(whole.slice(12).map((s) => s.__key__));
  });

  test('bad requests get 400/404 with a message, never a 500', async () => {
    const cases: [string, number, RegExp][] = [
      ['/streams/nope/0.tar', 404, /unknown stream "nope"; this server streams: colours/],
      ['/streams/colours/4.tar?partitions=4', 400, /partition 4 is outside the world/],
      ['/streams/colours/0.tar?partitions=0', 400, /partitions: expected an integer/],
      ['/streams/colours/0.tar?partitions=abc', 400, /partitions: expected an integer/],
      ['/streams/colours/0.tar?epoch=-1', 400, /epoch: expected an integer/],
      ['/streams/colours/0.tar?state=%7Bnot', 400, /not a resume state: not JSON/],
      ['/streams/colours/0.tar?state=%7B%22v%22%3A2%7D', 400, /not a resume state/],
      ['/streams/colours/zero.tar', 404, /expected \/streams\/colours\/\{partition\}\.tar/],
    ];
    for (const [path, status, message] of cases) {
      const res = await request(`${base}${path}`);
      const body = (await res.body.json()) as { error: string };
      expect([path, res.statusCode]).toEqual([path, status]);
      expect(body.error).toMatch(message);
    }
    const sample = (await tarSamples(`${base}/streams/colours/0.tar?partitions=2`)).samples[0]!;
    const res = await request(
      `${base}/streams/colours/0.tar?partitions=4&state=${encodeURIComponent(String(sample.state))}`,
    );
    expect(res.statusCode).toBe(400);
    expect(((await res.body.json()) as { error: string }).error).toMatch(/made for 2 partitions, this run has 4/);
  });

  test('a reader that stops reading stops the downloads (back-pressure), and a disconnect ends the partition', async () => {
    const res = await request(`${base}/streams/big/0.tar`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-clipstream-samples']).toBe('60');
    // Nobody reads: the partition stalls with a few samples in the socket buffers, not all 60 delivered. On a loaded
    // machine filling the buffers takes a while: wait until the count has not moved for 700 ms (at most 20 s).
    let stalled = -1;
    for (let waited = 0; waited < 20_000 && big.stats.delivered !== stalled; waited += 700) {
      stalled = big.stats.delivered;
      await new Promise((r) => setTimeout(r, 700));
    }
    expect(stalled).toBeLessThan(20);
    await new Promise((r) => setTimeout(r, 500));
    expect(big.stats.delivered).toBe(stalled);
    expect(big.stats.activePartitions).toBe(1);
    res.body.destroy();
    for (let waited = 0; waited < 10_000 && big.stats.activePartitions > 0; waited += 50)
      await new Promise((r) => setTimeout(r, 50));
    expect(big.stats.activePartitions).toBe(0);
  });

  test('stats as JSON and Prometheus metrics per stream', async () => {
    const stats = (await (await request(`${base}/streams/colours/stats`)).body.json()) as Record<string, unknown>;
    expect(stats).toMatchObject({
      name: 'colours',
      delivered: expect.any(Number),
      reasons: { http_404: expect.any(Number) },
    });
    const metrics = await (await request(`${base}/metrics`)).body.text();
    expect(metrics).toMatch(/clipstream_stream_samples_delivered\{stream="colours"\} \d+/);
    expect(metrics).toMatch(/clipstream_stream_failures\{stream="colours",reason="http_404"\} \d+/);
  });
});

describe('a stream that cannot deliver says why', () => {
  test('every host refused (private addresses): an HTTP error with the reasons and the hint, and a log line', async () => {
    const w = world();
    const plan = await loadPlan(
      await w.spec([{ name: 'red', count: 10 }], {
        fetch: { allow_private_networks: false, timeout: 5, retries: 0, concurrency: 32 },
      }),
    );
    const context = await createStreamContext(plan);
    const logs: string[] = [];
    const fetcher = createFetcher({});
    const app = createServer({
      indices: new Map(),
      fetcher,
      streams: new Map([['private', servedStream(plan, context)]]),
      log: (l) => logs.push(l),
    });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const res = await request(`${url}/streams/private/0.tar`);
      expect(res.statusCode).toBe(502);
      const body = (await res.body.json()) as { code: string; error: string; hint: string };
      expect(body.code).toBe('STREAM_EXHAUSTED');
      expect(body.error).toMatch(
        /query red: none of the \d+ candidates of this partition could be downloaded \(private_address \d+\)/,
      );
      expect(body.hint).toMatch(/allow_private_networks: true/);
      expect(logs.join('\n')).toMatch(/stream private partition 0 of 1 could not start: STREAM_EXHAUSTED: query red/);
    } finally {
      await app.close();
      await fetcher.close();
      await context.close();
    }
  });
});

describe('a stream served while its plan is still being resolved', () => {
  /**
   * A complete plan made to look half-resolved: its first block is 10 live links (epoch 0 walks the stripe in
   * order, so they come first); the rest, dead links included, arrives on release(), or the search fails on fail().
   */
  async function growingPlan() {
    const w = world();
    const full = await loadPlan(await w.spec([{ name: 'red', count: 40 }], { seed: 5 }));
    await full.pending;
    const reds = (await candidatesOf(full))[0]!;
    const live = reds.filter((c) => !c.url.includes('/status/')).slice(0, 10);
    const ordered = [...live, ...reds.filter((c) => !live.includes(c))];
    const first = ordered.slice(0, 10);
    const plan: Plan = { header: full.header, candidates: [first], warnings: [] };
    let release!: () => void;
    let fail!: (err: Error) => void;
    plan.pending = new Promise<void>((resolve, reject) => {
      release = () => {
        first.push(...ordered.slice(10));
        plan.warnings.push('found late');
        delete plan.pending;
        resolve();
      };
      fail = reject;
    });
    plan.pending.catch(() => {});
    return { plan, live, release, fail };
  }

  test('serve opens the stream without waiting for the long search, and tells its warnings or its failure when it ends', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const told = () => stderr.mock.calls.map((c) => String(c[0])).join('');
      const ok = await growingPlan();
      const opened = await Promise.race([
        openServedStream('g', ok.plan, tellOnStderr),
        new Promise<null>((r) => setTimeout(() => r(null), 5000)),
      ]);
      expect(opened).not.toBeNull(); // returned while the plan is still pending
      expect(ok.plan.pending).toBeInstanceOf(Promise);
      expect(told()).not.toMatch(/found late/);
      ok.release();
      await new Promise((r) => setImmediate(r));
      expect(told()).toMatch(/clipstream: warning: stream g: found late\n/);
      await opened!.context.close();

      const bad = await growingPlan();
      const failing = await openServedStream('b', bad.plan, tellOnStderr);
      bad.fail(new Error('the index went away'));
      await new Promise((r) => setImmediate(r));
      expect(told()).toMatch(/clipstream: error: stream b: the index went away\n/);
      await failing.context.close();
    } finally {
      stderr.mockRestore();
    }
  });

  test('a long search that fails after the first block: the tar ends with __error__.json and no end blocks; logged', async () => {
    const { plan, fail } = await growingPlan();
    const { stream: failing, context } = await openServedStream('failing', plan, tellOnStderr);
    const fetcher = createFetcher({});
    const logs: string[] = [];
    const app = createServer({
      indices: new Map(),
      fetcher,
      streams: new Map([['failing', failing]]),
      log: (l) => logs.push(l),
    });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const res = await request(`${url}/streams/failing/0.tar`);
      expect(res.statusCode).toBe(200);
      const chunks: Buffer[] = [];
      const reading = (async () => {
        for await (const chunk of res.body) chunks.push(chunk as Buffer);
      })();
      for (let waited = 0; failing.stats.delivered < 10 && waited < 10_000; waited += 50)
        await new Promise((r) => setTimeout(r, 50));
      fail(new ClipstreamError('INDEX_INVALID', 'the index went away'));
      await reading.catch(() => {});
      const body = Buffer.concat(chunks);
      const names = tarNames(body);
      expect(names.filter((n) => n.endsWith('.jpg'))).toHaveLength(10);
      expect(names.at(-1)).toBe('__error__.json');
      const last = JSON.parse(tarMember(body, '__error__.json')) as { code: string; error: string };
      expect(last).toMatchObject({ code: 'INDEX_INVALID', error: 'the index went away' });
      expect(body.subarray(-1024).every((b) => b === 0)).toBe(false); // no end-of-archive blocks: readers see it cut short
      expect(logs.join('\n')).toMatch(/stream failing partition 0 of 1 failed: INDEX_INVALID: the index went away/);
    } finally {
      await app.close();
      await fetcher.close();
      await context.close();
    }
  });

  test('serves the first block at once and the rest when the long search ends', async () => {
    const { plan, live, release } = await growingPlan();
    const { stream: growing, context } = await openServedStream('growing', plan, tellOnStderr);
    const fetcher = createFetcher({});
    const app = createServer({ indices: new Map(), fetcher, streams: new Map([['growing', growing]]) });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const res = await request(`${url}/streams/growing/0.tar`);
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-clipstream-samples']).toBe('40');
      const chunks: Buffer[] = [];
      const reading = (async () => {
        for await (const chunk of res.body) chunks.push(chunk as Buffer);
      })();
      for (let waited = 0; growing.stats.delivered < 10 && waited < 10_000; waited += 50)
        await new Promise((r) => setTimeout(r, 50));
      expect(growing.stats.delivered).toBe(10); // the whole first block, and no more before the long search ends
      expect(plan.pending).toBeInstanceOf(Promise);
      const listed = (await (await request(`${url}/streams`)).body.json()) as { streams: { warnings: string[] }[] };
      expect(listed.streams[0]!.warnings).toEqual([]);
      release();
      await reading;
      const dir = await tempDir();
      await writeFile(join(dir, 'p.tar'), Buffer.concat(chunks));
      const ids: number[] = [];
      for await (const s of readTarSamples(join(dir, 'p.tar')))
        ids.push((JSON.parse(String((s as Record<string, unknown>).json)) as { id: number }).id);
      expect(ids).toHaveLength(40);
      expect(ids.slice(0, 10)).toEqual(live.map((c) => c.id));
      expect(new Set(ids).size).toBe(40);
      const after = (await (await request(`${url}/streams`)).body.json()) as { streams: { warnings: string[] }[] };
      expect(after.streams[0]!.warnings).toEqual(['found late']);
    } finally {
      await app.close();
      await fetcher.close();
      await context.close();
    }
  });
});

/** Member names of a tar in a buffer (ustar headers, 512-byte blocks), stopping at the first zero block. */
function tarNames(tar: Buffer): string[] {
  const names: string[] = [];
  for (let at = 0; at + 512 <= tar.length;) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    names.push(header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, ''));
    const size = parseInt(header.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim(), 8);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

function tarMember(tar: Buffer, name: string): string {
  for (let at = 0; at + 512 <= tar.length;) {
    const header = tar.subarray(at, at + 512);
    const size = parseInt(header.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim(), 8);
    if (header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '') === name)
      return tar.subarray(at + 512, at + 512 + size).toString('utf8');
    at += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`no member ${name}`);
}
