// Part 1: `clipstream stream SPEC --output-folder` against `clipstream download` on the same urls, same run.
//
// The world is bench/download's: the same image server (latency 20–400 ms, 1.5 % 404, 1 % 500, 2 % slow), the
// same N urls, 256 px center_crop jpg, webdataset shards of 1 000. The urls are also the rows of an index (one
// direction, so one `embedding:` query at min_similarity -1 ranks them all) and the spec asks for exactly as many
// samples as the download delivered, with oversample = N / count: the plan holds all N urls, so the stream tries
// exactly the urls the download tried and back-fills each failure with another url of the list. Same total fetch
// concurrency (download: --thread-count C/processes in each of its processes; stream: fetch.concurrency C),
// per-host limit lifted, the same retries and timeout. Both are timed as whole processes (the stream's includes
// resolving the plan against the index). Rounds alternate download and stream; the best of each is compared.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fate } from '../download/fate.mjs';
import {
  cli,
  embeddingSpec,
  indexWithCli,
  mb,
  nearOneDirection,
  root,
  startImageServer,
  timed,
  writeEmbeddingFolder,
} from './common.mjs';

export async function throughput({
  count = 5000,
  concurrency = 256,
  processes = 2,
  shardSize = 1000,
  rounds = 2,
  retries = 0,
  timeout = 10,
  diagnose = false,
} = {}) {
  const server = await startImageServer();
  const dir = await mkdtemp(join(tmpdir(), 'clipstream-bench-stream-'));
  try {
    const urlOf = (n) => `${server.url}/img/${n}.jpg`;
    const list = join(dir, 'urls.txt');
    await writeFile(list, Array.from({ length: count }, (_, n) => urlOf(n)).join('\n') + '\n');
    const dim = 16;
    const t = performance.now();
    await writeEmbeddingFolder(join(dir, 'emb'), { rows: count, dim, urlOf, vectorInto: nearOneDirection(dim) });
    await indexWithCli(join(dir, 'emb'), join(dir, 'index'), 'flat');
    const servable = Array.from({ length: count }, (_, n) => fate(n)).filter((f) => f.kind !== 'status').length;
    console.log(
      `\n== throughput: stream vs download, ${count} urls (${servable} servable), images ~${Math.round(server.meanBytes / 1024)} KB, ` +
        `256 px center_crop jpg, fetch concurrency ${concurrency}, retries ${retries}, timeout ${timeout} s`,
    );
    console.log(
      `   world: ${count}-row flat index built with \`clipstream index\` in ${((performance.now() - t) / 1000).toFixed(1)} s (not timed below)`,
    );

    const perProcess = Math.max(1, Math.floor(concurrency / processes));
    const download = async (round) => {
      const out = join(dir, `download-${round}`);
      const run = await timed(process.execPath, [
        cli,
        'download',
        '--url-list',
        list,
        '--output-folder',
        out,
        '--output-format',
        'webdataset',
        '--image-size',
        '256',
        '--resize-mode',
        'center_crop',
        '--encode-format',
        'jpg',
        '--encode-quality',
        '95',
        '--processes-count',
        String(processes),
        '--thread-count',
        String(perProcess),
        '--per-host-concurrency',
        String(perProcess),
        '--retries',
        String(retries),
        '--timeout',
        String(timeout),
        '--allow-private-networks',
        '--incremental-mode',
        'overwrite',
        '--number-sample-per-shard',
        String(shardSize),
      ]);
      if (run.code !== 0) throw new Error(`download failed:\n${run.output}`);
      const stats = await shardStats(out);
      await rm(out, { recursive: true, force: true });
      return { ...run, ...stats };
    };
    const specFor = async (round, wanted) => {
      const spec = join(dir, `spec-${round}.json`);
      await writeFile(
        spec,
        JSON.stringify(
          embeddingSpec({
            index: join(dir, 'index'),
            embedding: [1, ...new Array(dim - 1).fill(0)],
            count: wanted,
            // Every url in the plan, no more: ceil(count × oversample) = N.
            oversample: (count - 0.5) / wanted,
            fetch: { concurrency, per_host: concurrency, retries, timeout },
          }),
        ),
      );
      return spec;
    };
    const stream = async (round, wanted) => {
      const out = join(dir, `stream-${round}`);
      const spec = await specFor(round, wanted);
      const run = await timed(process.execPath, [
        cli,
        'stream',
        spec,
        '--output-folder',
        out,
        '--number-sample-per-shard',
        String(shardSize),
      ]);
      if (run.code !== 0) throw new Error(`stream failed:\n${run.output}`);
      const stats = await shardStats(out);
      const progress = JSON.parse(await readFile(join(out, '_stream.json'), 'utf8'));
      const repeats = Number(/repeats (\d+)/.exec(run.output)?.[1] ?? 0);
      const attempts = Number(/attempts (\d+)/.exec(run.output)?.[1] ?? NaN);
      await rm(out, { recursive: true, force: true });
      return { ...run, ...stats, done: progress.done, repeats, attempts };
    };

    const downloads = [];
    const streams = [];
    let wanted;
    for (let round = 0; round < rounds; round++) {
      const d = await download(round);
      downloads.push(d);
      wanted ??= d.successes; // the stream must deliver what the download delivered
      const s = await stream(round, wanted);
      streams.push(s);
      if (s.successes !== wanted || !s.done)
        throw new Error(`the stream delivered ${s.successes} samples, ${wanted} were asked`);
      console.log(
        `   round ${round + 1}: download ${d.successes} samples in ${d.seconds.toFixed(1)} s (${(d.successes / d.seconds).toFixed(1)}/s, peak RSS ${mb(d.peakKb)}); ` +
          `stream ${s.successes} in ${s.seconds.toFixed(1)} s (${(s.successes / s.seconds).toFixed(1)}/s, peak RSS ${mb(s.peakKb)}, ${s.attempts} attempts, ${s.repeats} repeats)`,
      );
    }
    const rate = (r) => r.successes / r.seconds;
    const bestDownload = Math.max(...downloads.map(rate));
    const bestStream = Math.max(...streams.map(rate));
    const reasons = downloads[0].reasons;
    console.log(
      `   download failures: ${JSON.stringify(reasons)}; download ran ${processes} processes × ${perProcess} connections, stream 1 process × ${concurrency}`,
    );
    const ratio = bestStream / bestDownload;
    console.log(`stream samples/s:   ${bestStream.toFixed(1)} (best of ${rounds})`);
    console.log(`download samples/s: ${bestDownload.toFixed(1)} (best of ${rounds})`);
    console.log(`ratio stream/download: ${ratio.toFixed(2)} (target ≥ 0.95)`);
    if (diagnose) await engineWindows(await specFor('diagnose', wanted), concurrency);
    return { bestStream, bestDownload, ratio, downloads, streams };
  } finally {
    server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * --diagnose: the engine alone through the TS API (samples consumed, no sink), at windows (attempts open or ready
 * ahead of the consumer) of 1, 4 and 8 × the fetch concurrency (8 × is the default). Deliveries are in stripe order,
 * so a slow head holds the finished attempts behind it; when they fill the window no new download starts.
 */
async function engineWindows(spec, concurrency) {
  const { readSpec, resolvePlan } = await import(join(root, 'dist/select/index.js'));
  const { streamPartition } = await import(join(root, 'dist/stream/engine.js'));
  const { createStreamContext } = await import(join(root, 'dist/stream/api.js'));
  const plan = await resolvePlan(await readSpec(spec));
  const rates = [];
  for (const window of [concurrency, 4 * concurrency, 8 * concurrency]) {
    const context = await createStreamContext(plan);
    const start = performance.now();
    let n = 0;
    for await (const sample of streamPartition(plan, { partition: { index: 0, count: 1 }, context, window }))
      if (sample) n++;
    rates.push(`window ${window}: ${(n / ((performance.now() - start) / 1000)).toFixed(1)}/s`);
    await context.close();
  }
  console.log(`   diagnosis, engine alone (TS API, no sink, in this process): ${rates.join('; ')}`);
}

/** Successes and failure reasons summed over a folder's `*_stats.json`. */
async function shardStats(folder) {
  let successes = 0;
  const reasons = {};
  for (const f of (await readdir(folder)).filter((f) => f.endsWith('_stats.json'))) {
    const s = JSON.parse(await readFile(join(folder, f), 'utf8'));
    successes += s.successes;
    for (const [r, n] of Object.entries(s.reason_dict ?? {})) reasons[r] = (reasons[r] ?? 0) + n;
  }
  return { successes, reasons };
}
