import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { candidatesOf, loadPlan, resolvePlan, readSpec, type Plan } from '../../src/select/index.js';
import { openStream, parseState, type StreamSample } from '../../src/stream/index.js';
import { defaultWindow } from '../../src/stream/engine.js';
import { readNpyImage } from '../../src/image/index.js';
import { tempDir } from '../helpers/tmp.js';
import { COLOURS, streamWorld, type Colour } from './world.js';

// 600 rows: 200 of each colour, 30 % of the links dead.
const world = streamWorld({ counts: { red: 200, blue: 200, green: 200 }, deadFraction: 0.3 });

async function drain(stream: AsyncIterable<StreamSample>, limit = Infinity): Promise<StreamSample[]> {
  const out: StreamSample[] = [];
  for await (const s of stream) {
    out.push(s);
    if (out.length >= limit) break;
  }
  return out;
}

async function meanColour(image: Buffer): Promise<Colour> {
  const { channels } = await sharp(image).stats();
  const rgb = channels.slice(0, 3).map((c) => c.mean);
  let best: Colour = 'red';
  let bestDistance = Infinity;
  for (const [name, hex] of Object.entries(COLOURS) as [Colour, string][]) {
    const target = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
    const d = Math.hypot(...rgb.map((v, i) => v - target[i]!));
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  expect(bestDistance).toBeLessThan(30);
  return best;
}

describe('a stream delivers exact counts', () => {
  test('red × 100, blue × 50 with 30 % of the links dead: exactly 100 red and 50 blue images, no duplicates', async () => {
    const w = world();
    const spec = await w.spec([
      { name: 'red', count: 100 },
      { name: 'blue', count: 50 },
    ]);
    const stream = await openStream(spec);
    expect(stream.size).toBe(150);
    const samples = await drain(stream);
    expect(samples).toHaveLength(150);
    const byQuery = { red: 0, blue: 0 } as Record<string, number>;
    for (const s of samples) {
      byQuery[s.query]!++;
      expect(await meanColour(s.image)).toBe(s.query);
      expect(w.rows[s.json.id as number]!.colour).toBe(s.query);
      expect(w.rows[s.json.id as number]!.dead).toBe(false);
      expect(s.repeat).toBe(false);
      expect(s.json).toMatchObject({
        status: 'success',
        width: 32,
        height: 32,
        original_width: 48,
        original_height: 40,
        query: s.query,
        partition: 0,
        epoch: 0,
        colour: s.query,
      });
      expect(s.json.similarity).toBeGreaterThanOrEqual(0.9);
      expect(s.json.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(s.key).not.toContain('.');
    }
    expect(byQuery).toEqual({ red: 100, blue: 50 });
    expect(new Set(samples.map((s) => s.json.id)).size).toBe(150);
    expect(new Set(samples.map((s) => s.json.url)).size).toBe(150);
    expect(new Set(samples.map((s) => s.key)).size).toBe(150);
    const stats = stream.stats.snapshot();
    expect(stats.delivered).toBe(150);
    expect(stats.reasons.http_404).toBeGreaterThan(20);
    expect(stats.successes).toBe(150); // the window never runs past the last sample needed
  });

  test('4 partitions: equal counts, disjoint ids, and together exactly the planned total', async () => {
    const w = world();
    const plan = await resolvePlan(
      await readSpec(
        await w.spec([
          { name: 'red', count: 82 },
          { name: 'green', count: 41 },
        ]),
      ),
    );
    const parts: StreamSample[][] = [];
    for (let index = 0; index < 4; index++)
      parts.push(await drain(await openStream(plan, { partition: { index, count: 4 } })));
    // floor(82/4) = 20 red and floor(41/4) = 10 green per partition.
    for (const part of parts) {
      expect(part).toHaveLength(30);
      expect(part.filter((s) => s.query === 'red')).toHaveLength(20);
      expect(part.filter((s) => s.query === 'green')).toHaveLength(10);
    }
    const ids = parts.flat().map((s) => s.json.id);
    expect(new Set(ids).size).toBe(120);
  });

  test('the same plan, partition and epoch give the same samples in the same order; another epoch reorders them', async () => {
    const w = world();
    const plan = await loadPlan(
      await w.spec([
        { name: 'red', count: 30 },
        { name: 'blue', count: 30 },
      ]),
    );
    const ids = async (epoch: number) =>
      (await drain(await openStream(plan, { epoch }))).map((s) => `${s.query}:${String(s.json.id)}`);
    const a = await ids(0);
    expect(await ids(0)).toEqual(a);
    const b = await ids(1);
    expect(new Set(b)).toEqual(new Set(a));
    expect(b).not.toEqual(a);
  });

  test('one query: every epoch delivers the same samples in its own order, and resumes exactly inside an epoch', async () => {
    const w = world();
    const plan = await loadPlan(await w.spec([{ name: 'red', count: 40 }]));
    const run = async (epoch: number, state?: StreamSample['state']) =>
      await drain(await openStream(plan, { epoch, state }));
    const [e0, e1, e2] = [await run(0), await run(1), await run(2)];
    const ids = (samples: StreamSample[]) => samples.map((s) => s.json.id as number);
    expect(new Set(ids(e1))).toEqual(new Set(ids(e0)));
    expect(new Set(ids(e2))).toEqual(new Set(ids(e0)));
    expect(ids(e1)).not.toEqual(ids(e0));
    expect(ids(e2)).not.toEqual(ids(e1));
    // Not a rotation: the first ten of epoch 0 are spread over epoch 1.
    expect(
      Math.max(
        ...ids(e0)
          .slice(0, 10)
          .map((id) => ids(e1).indexOf(id)),
      ),
    ).toBeGreaterThan(20);
    expect(await run(1).then(ids)).toEqual(ids(e1));
    const tail = await run(1, e1[13]!.state);
    expect([...ids(e1.slice(0, 14)), ...ids(tail)]).toEqual(ids(e1));
  });
});

describe('infinite mode', () => {
  test('goes on epoch after epoch, each with exact quotas, and resumes across an epoch boundary', async () => {
    const w = world();
    const plan = await loadPlan(
      await w.spec([
        { name: 'red', count: 6 },
        { name: 'blue', count: 3 },
      ]),
    );
    const stream = await openStream(plan, { infinite: true });
    expect(stream.remaining).toBe(Infinity);
    const samples = await drain(stream, 24);
    expect(samples.map((s) => s.key.split('p')[0])).toEqual([
      ...Array(9).fill('e0'),
      ...Array(9).fill('e1'),
      ...Array(6).fill('e2'),
    ]);
    for (const epoch of [0, 1]) {
      const inEpoch = samples.filter((s) => s.json.epoch === epoch);
      expect(inEpoch.filter((s) => s.query === 'red')).toHaveLength(6);
      expect(inEpoch.filter((s) => s.query === 'blue')).toHaveLength(3);
    }
    const resumed = await drain(await openStream(plan, { infinite: true, state: samples[7]!.state }), 16);
    expect(resumed.map((s) => s.key)).toEqual(samples.slice(8).map((s) => s.key));
  });
});

describe('resume', () => {
  test('the state after any sample resumes exactly: nothing twice, nothing lost', async () => {
    const w = world();
    const plan = await loadPlan(
      await w.spec([
        { name: 'red', count: 40 },
        { name: 'blue', count: 25 },
      ]),
    );
    const full = (await drain(await openStream(plan))).map((s) => s.key + ':' + String(s.json.id));
    for (const cut of [1, 17, 64]) {
      const first = await openStream(plan);
      const head = await drain(first, cut);
      await first.close();
      const state = head.at(-1)!.state;
      expect(JSON.stringify(state).length).toBeLessThan(300);
      const tail = await drain(await openStream(plan, { state }));
      expect([...head, ...tail].map((s) => s.key + ':' + String(s.json.id))).toEqual(full);
    }
  });

  test('a state from another plan, partition count, partition or epoch is refused', async () => {
    const w = world();
    const plan = await loadPlan(await w.spec([{ name: 'red', count: 8 }]));
    const other = await loadPlan(await w.spec([{ name: 'red', count: 9 }]));
    const [sample] = await drain(await openStream(plan, { partition: { index: 1, count: 2 } }), 1);
    const state = sample!.state;
    await expect(openStream(other, { partition: { index: 1, count: 2 }, state })).rejects.toThrow(/made for plan/);
    await expect(openStream(plan, { partition: { index: 1, count: 4 }, state })).rejects.toThrow(
      /2 partitions, this run has 4/,
    );
    await expect(openStream(plan, { partition: { index: 0, count: 2 }, state })).rejects.toThrow(
      /partition 1's, this is partition 0/,
    );
    await expect(openStream(plan, { partition: { index: 1, count: 2 }, epoch: 1, state })).rejects.toThrow(
      /epoch 0, this is epoch 1/,
    );
    // A tail no walk over this stripe can reach (issue 15: 2^53 − 1 flagged every later sample as a repeat).
    const tampered = { ...state, queries: [{ ...state.queries[0]!, tail: Number.MAX_SAFE_INTEGER }] };
    await expect(
      openStream(plan, { partition: { index: 1, count: 2 }, state: parseState(JSON.stringify(tampered), 'state') }),
    ).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringMatching(/tail 9007199254740991\) does not fit query red's stripe/),
    });
    // A state of clipstream's first format (epochs did not reshuffle then) is refused with what to do.
    const v1 = {
      v: 1,
      plan: state.plan,
      p: 1,
      P: 2,
      epoch: 0,
      delivered: 1,
      rng: 1,
      queries: [{ cursor: 2, pass: 0, delivered: 1 }],
    };
    expect(() => parseState(JSON.stringify(v1), 'state')).toThrow(
      /state is not a resume state: v: it was made by an earlier clipstream .*start the epoch afresh/,
    );
  });
});

describe('back-fill and repeats', () => {
  test('a stripe that runs dry repeats earlier samples, flagged, and every partition still delivers its quota', async () => {
    const w = world();
    // Ask for more green than exist (200 rows, 60 of them dead): candidates run out.
    const plan = await loadPlan(await w.spec([{ name: 'green', count: 250 }]));
    expect(plan.warnings.join('\n')).toMatch(/green: 250 requested but only 200 candidates/);
    const samples = await drain(await openStream(plan, { partition: { index: 0, count: 2 } }));
    expect(samples).toHaveLength(125);
    const fresh = samples.filter((s) => !s.repeat);
    const repeats = samples.filter((s) => s.repeat);
    expect(new Set(fresh.map((s) => s.json.id)).size).toBe(fresh.length);
    const alive = (await candidatesOf(plan))[0]!.filter((c, i) => i % 2 === 0 && !w.rows[c.id]!.dead).length;
    expect(alive).toBeGreaterThan(50);
    expect(fresh.length).toBe(alive);
    expect(repeats.length).toBe(125 - alive);
    expect(repeats.length).toBeGreaterThan(0);
    for (const r of repeats) expect(fresh.map((s) => s.json.id)).toContain(r.json.id);
  });

  test('a query with no downloadable candidate in a partition fails with a clear error, not a hang', async () => {
    const w = world();
    const dir = await tempDir();
    const plan = await loadPlan(await w.spec([{ name: 'red', count: 4 }], { oversample: 1 }));
    // Every candidate points at a dead link.
    const dead: Plan = {
      ...plan,
      candidates: (await candidatesOf(plan)).map((list) =>
        list.map((c) => ({ ...c, url: `${w.server.url}/status/404?x=${c.id}` })),
      ),
    };
    void dir;
    await expect(drain(await openStream(dead))).rejects.toMatchObject({
      code: 'STREAM_EXHAUSTED',
      message: expect.stringMatching(/none of the 4 candidates/),
    });
  });
});

describe('cache', () => {
  test('two epochs with a cache: the second makes zero HTTP requests', async () => {
    const w = world();
    const cacheDir = await tempDir();
    const plan = await loadPlan(
      await w.spec(
        [
          { name: 'red', count: 40 },
          { name: 'blue', count: 20 },
        ],
        { cache: { dir: cacheDir, max_bytes: '50MB' } },
      ),
    );
    const before = w.server.totalRequests();
    const first = await drain(await openStream(plan, { epoch: 0 }));
    expect(w.server.totalRequests() - before).toBeGreaterThanOrEqual(60);
    const mid = w.server.totalRequests();
    const stream = await openStream(plan, { epoch: 1 });
    const second = await drain(stream);
    expect(w.server.totalRequests()).toBe(mid);
    expect(second).toHaveLength(60);
    expect(new Set(second.map((s) => s.json.id))).toEqual(new Set(first.map((s) => s.json.id)));
    expect(stream.stats.snapshot().cache_misses).toBe(0);
  });
});

describe('npy samples', () => {
  test('encode_format npy: the pixels of the right colour, served again from the cache without a request', async () => {
    const w = world();
    const cacheDir = await tempDir();
    const plan = await loadPlan(
      await w.spec([{ name: 'blue', count: 12 }], {
        image: { size: 16, resize_mode: 'center_crop', encode_format: 'npy' },
        cache: { dir: cacheDir, max_bytes: '50MB' },
      }),
    );
    const first = await drain(await openStream(plan));
    const blue = [0, 2, 4].map((i) => parseInt(COLOURS.blue.slice(i, i + 2), 16));
    for (const s of first) {
      expect(s.format).toBe('npy');
      const image = readNpyImage(s.image)!;
      expect([image.width, image.height, s.json.width, s.json.height]).toEqual([16, 16, 16, 16]);
      for (const [c, v] of [...image.pixels.subarray(0, 3)].entries())
        expect(Math.abs(v - blue[c]!)).toBeLessThanOrEqual(8);
    }
    const before = w.server.totalRequests();
    const again = await drain(await openStream(plan, { epoch: 1 }));
    expect(w.server.totalRequests()).toBe(before);
    const byId = new Map(first.map((s) => [s.json.id, s.image]));
    for (const s of again) expect(s.image.equals(byId.get(s.json.id)!)).toBe(true);
  });
});

describe('bounded memory', () => {
  test('the window keeps ready samples within 256 MB a partition: 196 KB npy samples get fewer than 30 KB jpgs', () => {
    const plan = (encode_format: string, size: number, queries: number, resize_mode = 'center_crop') =>
      ({
        header: {
          image: { size, resize_mode, encode_format },
          fetch: { concurrency: 256 },
          queries: Array(queries).fill({}),
        },
      }) as unknown as Plan;
    expect(defaultWindow(plan('jpg', 256, 1))).toBe(2048); // 8 × concurrency
    expect(defaultWindow(plan('npy', 256, 1))).toBe(1365); // 256 MiB / (256 × 256 × 3)
    expect(defaultWindow(plan('npy', 256, 3))).toBe(455);
    expect(defaultWindow(plan('npy', 256, 1, 'keep_ratio'))).toBe(682); // the long side may be twice the short one
    expect(defaultWindow(plan('npy', 4096, 1))).toBe(16); // at least 16
    expect(defaultWindow(plan('png', 512, 1))).toBe(512); // 256 MiB / (512 × 512 × 2): a lossless png of a photo
  });

  test('a slow consumer holds the downloads ahead of it to the window', async () => {
    const w = world();
    const fetch = { allow_private_networks: true, timeout: 5, retries: 0, concurrency: 4 };
    const plan = await loadPlan(
      await w.spec(
        [
          { name: 'red', count: 120 },
          { name: 'blue', count: 120 },
        ],
        { fetch },
      ),
    );
    const stream = await openStream(plan);
    const it = stream[Symbol.asyncIterator]();
    for (let i = 0; i < 5; i++) {
      await it.next();
      await new Promise((r) => setTimeout(r, 100));
    }
    // window = 8 × fetch.concurrency = 32 per query: at most 2 × 32 open or ready attempts besides the 5 consumed
    // (failures are replaced, so count successes).
    expect(stream.stats.successes).toBeLessThanOrEqual(5 + 64);
    await stream.close();
  });

  test('attempts count finished attempts only: in flight apart, abandoned ones never', async () => {
    const w = world();
    // every download of this world waits 1-2 s: attempts are in flight when the stream is closed
    const plan = await loadPlan(
      await w.spec([{ name: 'red', count: 20 }], {
        fetch: { allow_private_networks: true, timeout: 5, retries: 0, concurrency: 8 },
      }),
    );
    const slow = {
      ...plan,
      candidates: (await candidatesOf(plan)).map((list) =>
        list.map((c) => ({ ...c, url: `${w.server.url}/slow-first-byte?ms=1500&id=${c.id}` })),
      ),
    };
    const stream = await openStream(slow);
    const first = stream[Symbol.asyncIterator]().next();
    await new Promise((r) => setTimeout(r, 300));
    const during = stream.stats.snapshot();
    expect(during.in_flight).toBeGreaterThan(0);
    expect(during.attempts).toBe(during.successes + during.failures); // the success rate is not diluted by what is under way
    await first;
    await stream.close();
    const after = stream.stats.snapshot();
    expect(after.in_flight).toBe(0);
    expect(after.attempts).toBe(after.successes + after.failures);
    expect(after.success_rate).toBe(
      after.attempts === 0 ? null : Math.round((after.successes / after.attempts) * 10_000) / 10_000,
    );
  });
});
