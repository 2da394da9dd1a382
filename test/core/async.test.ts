import { describe, expect, it } from 'vitest';
import { batch, collect, parallelMapOrdered, parallelMapUnordered, Semaphore } from '../../src/core/async.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function* counting(n: number, pulled: { count: number }) {
  for (let i = 0; i < n; i++) {
    pulled.count++;
    yield i;
  }
}

describe('parallelMapUnordered', () => {
  it('never has more than `concurrency` calls in flight and returns every result', async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await collect(
      parallelMapUnordered(
        Array.from({ length: 50 }, (_, i) => i),
        async (i) => {
          inFlight++;
          peak = Math.max(peak, inFlight);
          await sleep((i * 7) % 5);
          inFlight--;
          return i * 2;
        },
        { concurrency: 4 },
      ),
    );
    expect(peak).toBe(4);
    expect(out.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
  });

  it('yields in completion order', async () => {
    const out = await collect(
      parallelMapUnordered([30, 1, 15], async (ms) => (await sleep(ms), ms), { concurrency: 3 }),
    );
    expect(out).toEqual([1, 15, 30]);
  });

  it('applies back-pressure: a consumer that stops pulling stops the source', async () => {
    const pulled = { count: 0 };
    const it = parallelMapUnordered(counting(1000, pulled), async (i) => i, { concurrency: 8 });
    const first = await it.next();
    expect(first.done).toBe(false);
    await sleep(20);
    expect(pulled.count).toBeLessThanOrEqual(9);
    await it.return(undefined);
  });

  it('propagates an error from fn', async () => {
    const run = collect(
      parallelMapUnordered(
        [1, 2, 3],
        async (i) => {
          if (i === 2) throw new Error('boom');
          return i;
        },
        { concurrency: 2 },
      ),
    );
    await expect(run).rejects.toThrow('boom');
  });

  it('rejects a concurrency that is not a positive integer', async () => {
    await expect(parallelMapUnordered([1], async (i) => i, { concurrency: 0 }).next()).rejects.toThrow(
      /positive integer/,
    );
  });
});

describe('parallelMapOrdered', () => {
  it('keeps input order while running calls concurrently', async () => {
    const started: number[] = [];
    const out = await collect(
      parallelMapOrdered(
        [40, 5, 20, 1],
        async (ms) => {
          started.push(ms);
          await sleep(ms);
          return ms;
        },
        { concurrency: 4 },
      ),
    );
    expect(out).toEqual([40, 5, 20, 1]);
    expect(started).toHaveLength(4);
  });

  it('holds at most `concurrency` items behind a slow head', async () => {
    const pulled = { count: 0 };
    const it = parallelMapOrdered(counting(100, pulled), async (i) => (await sleep(i === 0 ? 50 : 0), i), {
      concurrency: 3,
    });
    const first = await it.next();
    expect(first.value).toBe(0);
    expect(pulled.count).toBeLessThanOrEqual(4);
    await it.return(undefined);
  });
});

describe('batch', () => {
  it('groups and keeps the short tail', async () => {
    expect(await collect(batch([1, 2, 3, 4, 5], 2))).toEqual([[1, 2], [3, 4], [5]]);
  });
});

describe('Semaphore', () => {
  it('admits at most `size` holders', async () => {
    const sem = new Semaphore(2);
    let active = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 10 }, () =>
        sem.use(async () => {
          active++;
          peak = Math.max(peak, active);
          await sleep(2);
          active--;
        }),
      ),
    );
    expect(peak).toBe(2);
  });
});
