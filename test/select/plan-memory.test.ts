/**
 * A plan's memory does not grow with the plan: `clipstream plan` of a million candidates (a wide threshold on the
 * fixtures' IVF-Flat index of 1 M small vectors, Arrow metadata) runs in a child process whose V8 heap is capped at
 * 128 MB — a plan held in memory (~300 bytes a candidate) cannot fit there — and its peak RSS is within 200 MB of
 * the same command planning 300 candidates of the same index.
 */
import { spawn } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { beforeAll, expect, test } from 'vitest';
import { faissFixtures, FIXTURE_TIMEOUT_MS } from '../index/faiss/fixtures.js';
import { tempDir } from '../helpers/tmp.js';

let fixtures: string;
beforeAll(async () => {
  fixtures = await faissFixtures();
}, FIXTURE_TIMEOUT_MS);

/** Runs `clipstream plan` with a capped heap; its peak RSS read from /proc while it runs (VmHWM only grows). */
async function planPeak(dir: string, count: number): Promise<{ code: number | null; peakMb: number; stderr: string }> {
  const spec = join(dir, `spec-${count}.json`);
  await writeFile(
    spec,
    JSON.stringify({
      index: join(fixtures, 'folders/large'),
      queries: [{ name: 'all', embedding: [1, 0, 0, 0, 0, 0, 0, 0], count }],
      oversample: 3,
    }),
  );
  const child = spawn(
    process.execPath,
    ['--max-old-space-size=128', resolve('dist/cli/main.js'), 'plan', spec, '--output', join(dir, `plan-${count}`)],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let peakKb = 0;
  const poll = setInterval(() => {
    void readFile(`/proc/${child.pid}/status`, 'utf8')
      .then((s) => (peakKb = Math.max(peakKb, Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0))))
      .catch(() => {});
  }, 100);
  const code = await new Promise<number | null>((done) => child.on('close', done));
  clearInterval(poll);
  return { code, peakMb: peakKb / 1024, stderr };
}

test('a plan of 1 000 000 candidates is written in a heap of 128 MB, its RSS as flat as a plan of 300', async () => {
  const dir = await tempDir();
  const small = await planPeak(dir, 100);
  expect(small.code, small.stderr).toBe(0);
  const large = await planPeak(dir, 400_000); // × oversample 3: every row of the index is kept
  expect(large.code, large.stderr).toBe(0);
  const header = JSON.parse(await readFile(join(dir, 'plan-400000', 'plan.json'), 'utf8')) as {
    queries: { planned: number; available: number }[];
  };
  expect(header.queries[0]).toMatchObject({ planned: 1_000_000, available: 1_000_000 });
  expect((await stat(join(dir, 'plan-400000', 'positions-0000.bin'))).size).toBe(12 * 1_000_000);
  process.stdout.write(
    `plan of 1 000 000 candidates: peak RSS ${large.peakMb.toFixed(0)} MB, of 300: ${small.peakMb.toFixed(0)} MB\n`,
  );
  expect(large.peakMb - small.peakMb).toBeLessThan(200);
}, 600_000);
