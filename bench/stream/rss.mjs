// Part 3: the stream process's memory over COUNT samples (default 100 k).
//
// Tiny images (64×48 JPEGs, ~1.5 KB, resized to 64 px center_crop) from the bench server without latency but with
// its errors (1.5 % 404, 1 % 500: back-filled), so 100 k samples take minutes and the engine, not the network,
// sets the pace. The index has COUNT × 1.05 rows near one direction (flat, cached under
// ~/.cache/clipstream-bench/stream/), one `embedding:` query asks for COUNT. The process is
// `clipstream stream SPEC --output -` (default; its tar is read and discarded here, counting samples) or
// `--output-folder` (--rss-mode folder). VmRSS and VmHWM are read from /proc/PID/status every 100 ms.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cachedIndex,
  cli,
  embeddingSpec,
  indexWithCli,
  mb,
  nearOneDirection,
  rssSampler,
  startImageServer,
  tarWalker,
  writeEmbeddingFolder,
} from './common.mjs';

export async function rss({ count = 100_000, port = 47611, mode = 'stdout', concurrency = 256, rebuild = false } = {}) {
  const rows = Math.ceil(count * 1.05);
  const dim = 16;
  console.log(
    `\n== memory: \`clipstream stream SPEC ${mode === 'folder' ? '--output-folder DIR' : '--output -'}\` over ${count} samples (64×48 JPEGs → 64 px), ${rows}-row index, fetch concurrency ${concurrency}`,
  );
  const index = await cachedIndex(
    `rss-${rows}x${dim}-port${port}`,
    async (emb, out) => {
      await writeEmbeddingFolder(emb, {
        rows,
        dim,
        urlOf: (i) => `http://127.0.0.1:${port}/img/${i}.jpg`,
        vectorInto: nearOneDirection(dim),
      });
      const run = await indexWithCli(emb, out, 'flat');
      return { rows, dim, port, index_seconds: run.seconds };
    },
    { rebuild },
  );
  console.log(`   index ${index.built ? 'built' : 'from the cache'} (${index.dir})`);
  const server = await startImageServer({ port, tiny: true, latency: false });
  const dir = await mkdtemp(join(tmpdir(), 'clipstream-bench-rss-'));
  try {
    const spec = join(dir, 'spec.json');
    await writeFile(
      spec,
      JSON.stringify(
        embeddingSpec({
          index: index.dir,
          embedding: [1, ...new Array(dim - 1).fill(0)],
          count,
          oversample: rows / count,
          image: { size: 64 },
          fetch: { concurrency, per_host: concurrency, retries: 0 },
        }),
      ),
    );
    const out = join(dir, 'out');
    const args = mode === 'folder' ? ['--output-folder', out] : ['--output', '-'];
    const start = performance.now();
    const child = spawn(process.execPath, [cli, 'stream', spec, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let delivered = 0;
    let stderr = '';
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    if (mode === 'folder') {
      child.stdout.resume();
    } else {
      const walk = tarWalker((name) => {
        if (name.endsWith('.state')) delivered++;
      });
      child.stdout.on('data', walk);
    }
    const progressFile = join(out, '_stream.json');
    let polling = false;
    const folderPoll =
      mode === 'folder'
        ? setInterval(async () => {
            if (polling) return;
            polling = true;
            delivered = await readFile(progressFile, 'utf8').then(
              (t) => JSON.parse(t).state?.delivered ?? 0,
              () => delivered,
            );
            polling = false;
          }, 200)
        : undefined;
    const sampler = rssSampler(child.pid, () => delivered, 100);
    const code = await new Promise((resolve) => child.once('close', resolve));
    clearInterval(folderPoll);
    const samples = (await sampler.stop()).filter((s) => s.rssKb > 0);
    const seconds = (performance.now() - start) / 1000;
    if (code !== 0) throw new Error(`stream exited with ${code}:\n${stderr}`);
    if (mode === 'folder') delivered = JSON.parse(await readFile(progressFile, 'utf8')).state.delivered;
    if (delivered !== count) throw new Error(`the stream delivered ${delivered} samples, ${count} were asked`);

    const peak = Math.max(...samples.map((s) => s.hwmKb));
    const at = (fraction) => {
      const s = samples.find((x) => x.progress >= fraction * count) ?? samples.at(-1);
      return s.rssKb;
    };
    const firstSample = samples.find((s) => s.progress > 0);
    console.log(
      `   ${count} samples in ${seconds.toFixed(1)} s (${(count / seconds).toFixed(0)}/s, plan resolution included); ${samples.length} RSS readings`,
    );
    console.log(
      `   RSS at the first sample: ${mb(firstSample?.rssKb ?? 0)}; every 10 %: ${[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((d) => mb(at(d / 10)).replace(' MB', '')).join(', ')} MB`,
    );
    const growth = at(1) - at(0.1);
    console.log(
      `RSS at 10 %: ${mb(at(0.1))}, 50 %: ${mb(at(0.5))}, 100 %: ${mb(at(1))}; peak (VmHWM) ${mb(peak)} (target: flat, ≤ 1 GB); 10 % → 100 %: ${growth >= 0 ? '+' : ''}${mb(growth)}`,
    );
    return { count, seconds, samples, peak, at10: at(0.1), at50: at(0.5), at100: at(1) };
  } finally {
    server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
