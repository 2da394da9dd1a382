import { describe, expect, test } from 'vitest';
import { candidatesOf, openPlan, readSpec, resolvePlan, type Plan } from '../../src/select/index.js';
import { openStream, type StreamSample } from '../../src/stream/index.js';
import { streamWorld } from './world.js';

// 200 rows of each colour (identical embeddings per colour: ties are broken by id), 30 % of the links dead.
const world = streamWorld({ counts: { red: 200, blue: 200, green: 200 }, deadFraction: 0.3 });
const FIRST = 20;

async function drain(stream: AsyncIterable<StreamSample>, limit = Infinity): Promise<StreamSample[]> {
  const out: StreamSample[] = [];
  if (limit <= 0) return out;
  for await (const s of stream) {
    out.push(s);
    if (out.length >= limit) break;
  }
  return out;
}

const ids = async (plan: Plan) => (await candidatesOf(plan)).map((list) => list.map((c) => c.id));

/**
 * The complete plan as if its long search had not ended yet: each query holds its first block, and the rest is
 * appended when the test calls `release` (or the plan fails with `fail`).
 */
async function growing(
  full: Plan,
  firstBlockSizes: number[],
): Promise<{ plan: Plan; release: () => void; fail: (err: Error) => void }> {
  const lists = await candidatesOf(full);
  const grown = lists.map((list, qi) => list.slice(0, firstBlockSizes[qi]));
  const plan: Plan = { header: full.header, candidates: grown, warnings: [] };
  let release!: () => void;
  let fail!: (err: Error) => void;
  plan.pending = new Promise<void>((resolve, reject) => {
    release = () => {
      lists.forEach((list, qi) => grown[qi]!.push(...list.slice(firstBlockSizes[qi])));
      delete plan.pending;
      resolve();
    };
    fail = reject;
  });
  plan.pending.catch(() => {});
  return { plan, release, fail };
}

describe('a plan in two blocks', () => {
  test("the first block is each query's best, the rest is appended when the long search ends, and the whole is what resolvePlan gives", async () => {
    const w = world();
    const spec = await readSpec(
      await w.spec(
        [
          { name: 'red', count: 60 },
          { name: 'blue', count: 30 },
        ],
        { seed: 3 },
      ),
    );
    const plan = await openPlan(spec, { firstBlock: FIRST });
    expect(plan.pending).toBeInstanceOf(Promise);
    expect(plan.candidates.map((l) => l.length)).toEqual([FIRST, FIRST]);
    // Ties by id: the first block holds the 20 lowest ids of the colour, in a seeded order. Read by position: the
    // long search runs meanwhile, and what it publishes is appended to the same lists.
    const firstBlocks = await Promise.all(
      plan.candidates.map(async (list) => {
        const out: number[] = [];
        for (let i = 0; i < FIRST; i++) out.push((await list.at(i))!.id);
        return out;
      }),
    );
    const reds = w.rows.flatMap((r, id) => (r.colour === 'red' ? [id] : []));
    expect([...firstBlocks[0]!].sort((a, b) => a - b)).toEqual(reds.slice(0, FIRST));
    await plan.pending;
    expect(plan.pending).toBeUndefined();
    // oversample 3: 180 and 90 kept; the first block stays in front, nothing twice.
    expect(plan.candidates.map((l) => l.length)).toEqual([180, 90]);
    expect((await ids(plan)).map((l) => l.slice(0, FIRST))).toEqual(firstBlocks);
    for (const list of await ids(plan)) expect(new Set(list).size).toBe(list.length);
    expect(plan.header.queries.map((q) => [q.available, q.available_more, q.planned])).toEqual([
      [200, false, 180],
      [129, true, 90],
    ]);
    const whole = await resolvePlan(spec, { firstBlock: FIRST });
    expect(whole.pending).toBeUndefined();
    expect(whole.header.id).toBe(plan.header.id);
    expect(await ids(whole)).toEqual(await ids(plan));
    expect((await resolvePlan(spec)).header.id).not.toBe(plan.header.id); // the blocks are part of what the id names
  });

  test('two queries after the same rows: a row goes to one query only, across both blocks', async () => {
    const w = world();
    const spec = await readSpec(
      await w.spec([
        { name: 'a', text: 'red', count: 40 },
        { name: 'b', text: 'red', count: 40 },
      ]),
    );
    const plan = await resolvePlan(spec, { firstBlock: FIRST });
    const [a, b] = await ids(plan);
    // Equal similarities: the earlier query wins every row, in both blocks.
    expect(a).toHaveLength(120);
    expect(b).toHaveLength(0);
    expect(plan.warnings.join('\n')).toMatch(/query b: 40 requested but only 0 candidates/);
  });

  test("without dedup, a row of one query's first block stays in another query's second block", async () => {
    const w = world();
    // b's first block is blue; its long search (391 rows of 400) reaches the reds of a's first block.
    const queries = [
      { name: 'a', text: 'red', count: 5 },
      { name: 'b', text: 'blue', count: 100, min_similarity: -1, where: "colour <> 'green'" },
    ];
    const [a, b] = await ids(
      await resolvePlan(await readSpec(await w.spec(queries, { dedup: { ids: false, urls: false } })), {
        firstBlock: FIRST,
      }),
    );
    expect(a).toHaveLength(15);
    for (const id of a!) expect(b).toContain(id);
    const [a2, b2] = await ids(await resolvePlan(await readSpec(await w.spec(queries)), { firstBlock: FIRST }));
    for (const id of a2!) expect(b2).not.toContain(id);
  });

  test('a query its first block covers needs no long search', async () => {
    const w = world();
    const spec = await readSpec(await w.spec([{ name: 'green', count: 5 }]));
    const plan = await openPlan(spec, { firstBlock: FIRST });
    expect(plan.pending).toBeUndefined();
    expect(plan.candidates[0]).toHaveLength(15);
  });

  test('nor does one whose limit the first block already reached, even when dedup left it short', async () => {
    // count 1: keep 3, limit 3 + 1 + 16 = 20 = the first block; the second query loses its rows to the first
    const w = world();
    const spec = await readSpec(
      await w.spec([
        { name: 'a', text: 'red', count: 1 },
        { name: 'b', text: 'red', count: 1 },
      ]),
    );
    const plan = await openPlan(spec, { firstBlock: FIRST });
    expect(plan.pending).toBeUndefined();
  });
});

describe('streaming a plan whose long search is still running', () => {
  test('epoch 0 starts on the first block, waits at its end, then delivers exactly what the complete plan gives', async () => {
    const w = world();
    const spec = await readSpec(await w.spec([{ name: 'red', count: 60 }], { seed: 5 }));
    const full = await resolvePlan(spec, { firstBlock: FIRST });
    const reference = (await drain(await openStream(full, { partition: { index: 1, count: 2 } }))).map(
      (s) => s.json.id,
    );
    expect(reference).toHaveLength(30);

    const { plan, release } = await growing(full, [FIRST]);
    // Partition 1 of 2 knows stripe positions 0…9 (candidates 1, 3, …, 19): it delivers the alive ones up to the
    // first dead one, whose replacement comes from the tail, which is not known yet.
    const stripe = (await candidatesOf(full))[0]!.filter((_, i) => i % 2 === 1).slice(0, FIRST / 2);
    const leading = stripe.findIndex((c) => w.rows[c.id]!.dead);
    expect(leading).toBeGreaterThanOrEqual(0);
    const stream = await openStream(plan, { partition: { index: 1, count: 2 } });
    const it = stream[Symbol.asyncIterator]();
    const early: StreamSample[] = [];
    for (let i = 0; i < leading; i++) early.push((await it.next()).value as StreamSample);
    expect(early.map((s) => s.json.id)).toEqual(stripe.slice(0, leading).map((c) => c.id));
    let settled = false;
    const next = it.next().then((r) => {
      settled = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false);
    release();
    const rest = [(await next).value as StreamSample, ...(await drain({ [Symbol.asyncIterator]: () => it }))];
    expect([...early, ...rest].map((s) => s.json.id)).toEqual(reference);
  });

  test('a later epoch and a resumed walk wait for the whole plan, then match the complete plan', async () => {
    const w = world();
    const spec = await readSpec(
      await w.spec(
        [
          { name: 'red', count: 40 },
          { name: 'blue', count: 20 },
        ],
        { seed: 7 },
      ),
    );
    const full = await resolvePlan(spec, { firstBlock: FIRST });
    const epoch1 = (await drain(await openStream(full, { epoch: 1 }))).map((s) => s.key + ':' + String(s.json.id));
    const cut = await drain(await openStream(full), 17);
    const tail = (await drain(await openStream(full, { state: cut.at(-1)!.state }))).map(
      (s) => s.key + ':' + String(s.json.id),
    );

    const g1 = await growing(full, [FIRST, FIRST]);
    const early = drain(await openStream(g1.plan, { epoch: 1 }));
    await new Promise((r) => setTimeout(r, 200));
    g1.release();
    expect((await early).map((s) => s.key + ':' + String(s.json.id))).toEqual(epoch1);

    const g2 = await growing(full, [FIRST, FIRST]);
    const resumed = drain(await openStream(g2.plan, { state: cut.at(-1)!.state }));
    g2.release();
    expect((await resumed).map((s) => s.key + ':' + String(s.json.id))).toEqual(tail);
  });

  test('a long search that fails fails the stream when it needs the missing candidates, with the search error', async () => {
    const w = world();
    const spec = await readSpec(await w.spec([{ name: 'red', count: 60 }]));
    const full = await resolvePlan(spec, { firstBlock: FIRST });
    const { plan, fail } = await growing(full, [FIRST]);
    const stream = drain(await openStream(plan));
    fail(new Error('lance error: the index went away'));
    await expect(stream).rejects.toThrow(/the index went away/);
  });
});
