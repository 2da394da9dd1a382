import { describe, expect, it } from 'vitest';
import { keptRows } from '../../src/index/dedup.js';

/** Unit vectors of a seeded pseudo-random walk: distinct, so every one is kept and the scan is at its longest. */
function vectors(n: number, d: number): Float32Array[] {
  let x = 12345;
  const next = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  return Array.from({ length: n }, () => {
    const v = Float32Array.from({ length: d }, next);
    const norm = Math.hypot(...v);
    return v.map((c) => c / norm);
  });
}

describe('dedup of search results', () => {
  it('keeps the first of each url and of each near-duplicate group, best first', async () => {
    const [a, b] = vectors(2, 8);
    const rows = [
      { url: 'u1', v: a! },
      { url: 'u1', v: b! }, // same url
      { url: 'u2', v: a!.map((c, i) => c + (i === 0 ? 1e-3 : 0)) }, // near-duplicate of row 0
      { url: 'u3', v: b! },
    ];
    const keep = await keptRows(
      rows.length,
      { urls: true, nearDuplicate: 0.94 },
      (i) => rows[i]!.url,
      (i) => rows[i]!.v,
    );
    expect(keep).toEqual([0, 3]);
  });

  it("drops a chain whole behind its best member, as clip back's connected components do; a cosine equal to the threshold is no link", async () => {
    // a·b = cos 20° ≈ 0.940, b·c ≈ 0.940, a·c = cos 40° ≈ 0.766: b is a's near-duplicate, c only b's
    const at = (deg: number) => Float32Array.of(Math.cos((deg * Math.PI) / 180), Math.sin((deg * Math.PI) / 180));
    const chain = [at(0), at(20), at(40), at(90)];
    const keep = await keptRows(
      chain.length,
      { nearDuplicate: 0.93 },
      () => null,
      (i) => chain[i]!,
    );
    expect(keep).toEqual([0, 3]);
    const pair = [Float32Array.of(1, 0), Float32Array.of(0.5, Math.sqrt(0.75))]; // cosine exactly 0.5
    expect(
      await keptRows(
        2,
        { nearDuplicate: 0.5 },
        () => null,
        (i) => pair[i]!,
      ),
    ).toEqual([0, 1]);
  });

  it('a long near-duplicate scan lets the event loop run (one big request does not stall the server)', async () => {
    const rows = vectors(2500, 256);
    let last = performance.now();
    let worst = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
    }, 1);
    const started = performance.now();
    const keep = await keptRows(
      rows.length,
      { nearDuplicate: 0.94 },
      () => null,
      (i) => rows[i]!,
    );
    const took = performance.now() - started;
    clearInterval(ticker);
    expect(keep).toHaveLength(2500); // all distinct: the scan compared every pair
    expect(took).toBeGreaterThan(150); // long enough that a blocking loop would show
    expect(worst).toBeLessThan(Math.max(100, took / 3));
  });
});
