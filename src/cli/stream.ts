import { Command } from 'commander';
import { resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { invalidOption } from '../core/errors.js';
import type { Stream, StreamSample } from '../stream/engine.js';
import { partitionOf } from '../stream/partition.js';
import type { StreamStats } from '../stream/stats.js';
import { countProgress } from './count-progress.js';
import { toLocalPath, toNumber } from './parse.js';
import { warningsOnStderr, warnWhenResolved } from '../select/plan-warnings.js';

// The command's work loads when it runs (`--help` needs none of it): LanceDB for a spec, undici and sharp for the
// downloads, each ~50–100 ms to load.
const engine = () =>
  Promise.all([import('../stream/engine.js'), import('../stream/api.js'), import('../stream/tar-writer.js')]);

interface StreamFlags {
  outputFolder?: string;
  output?: string;
  rank: number;
  worldSize: number;
  worker: number;
  numWorkers: number;
  epoch: number;
  resume: boolean;
  numberSamplePerShard: number;
}

/** `clipstream stream`: one partition of a spec or plan into webdataset shards, or one tar on stdout. */
export function streamCommand(): Command {
  return new Command('stream')
    .description(
      'Stream one partition of a spec or plan: download, resize, back-fill; into webdataset shards (+ parquet, manifest) or a tar on stdout',
    )
    .argument(
      '<spec-or-plan>',
      'spec file, or a plan folder made by `clipstream plan` (local or s3://bucket/prefix)',
      toLocalPath('<spec-or-plan>', { s3: true }),
    )
    .option(
      '--output-folder <dir>',
      'write shards here (one folder or s3://bucket/prefix per partition)',
      toLocalPath('--output-folder', { s3: true }),
    )
    .option('--output <dash>', 'with "-": one webdataset tar on stdout instead')
    .option('--rank <r>', "this process's rank", toNumber('--rank'), 0)
    .option('--world-size <w>', 'number of ranks', toNumber('--world-size'), 1)
    .option('--worker <i>', 'data-loader worker within the rank', toNumber('--worker'), 0)
    .option('--num-workers <n>', 'data-loader workers per rank', toNumber('--num-workers'), 1)
    .option('--epoch <e>', 'epoch: the same samples, reshuffled with (seed, epoch)', toNumber('--epoch'), 0)
    .option('--resume', 'complete an interrupted run in --output-folder', false)
    .option('--number-sample-per-shard <n>', 'samples per shard', toNumber('--number-sample-per-shard'), 1000)
    .action(async (source: string, flags: StreamFlags) => {
      if ((flags.outputFolder === undefined) === (flags.output === undefined))
        throw invalidOption('Expected exactly one of --output-folder DIR or --output -');
      if (flags.output !== undefined && flags.output !== '-')
        throw invalidOption(
          `Expected "-" for --output but received ${JSON.stringify(flags.output)}; use --output-folder for a folder`,
        );
      if (!Number.isInteger(flags.numberSamplePerShard) || flags.numberSamplePerShard < 1) {
        throw invalidOption(
          `Expected a positive integer for --number-sample-per-shard but received ${flags.numberSamplePerShard}`,
        );
      }
      const partition = partitionOf(flags);
      // A missing bucket is said before the index is searched.
      const remote = flags.outputFolder?.startsWith('s3://') === true; // toLocalPath lower-cases the scheme
      if (remote) await (await import('../io/s3.js')).checkBucket(flags.outputFolder!);
      const { loadPlan } = await import('../select/plan-file.js');
      // The engine's modules load while the index searches (time to the first sample of a spec: −0.1 s).
      let loading: ReturnType<typeof engine> | undefined;
      const plan = await loadPlan(source, { whileSearching: () => (loading = engine()).catch(() => {}) });
      const [{ streamPartition }, { createStreamContext }] = await (loading ?? engine());
      // From a spec, streaming starts on each query's first block while the long search runs.
      warnWhenResolved(plan, '', warningsOnStderr);
      const context = await createStreamContext(plan);
      const progress = countProgress(`stream p${partition.index}/${partition.count}`, 'samples');
      const start = performance.now();
      try {
        if (flags.outputFolder !== undefined) {
          const { streamToFolder } = await import('../stream/folder.js');
          const summary = await streamToFolder(plan, {
            folder: flags.outputFolder,
            partition,
            epoch: flags.epoch,
            resume: flags.resume,
            numberSamplePerShard: flags.numberSamplePerShard,
            context,
            onSample: (done, size) => progress.update(done, size),
          });
          progress.stop();
          const resumed = summary.resumedFrom ? ` (resumed at ${summary.resumedFrom})` : '';
          process.stdout.write(
            `done: ${summary.delivered}/${summary.size} samples${resumed} in ${summary.shards} shard(s) in ${remote ? summary.folder : resolve(summary.folder)}, ` +
              `${seconds(start)}s\n  per query: ${Object.entries(summary.byQuery)
                .map(([k, v]) => `${k} ${v}`)
                .join(', ')}\n${failureLine(summary.stats)}`,
          );
        } else {
          const stream = streamPartition(plan, { partition, epoch: flags.epoch, context });
          const complete = await tarToStdout(stream, (sample) => progress.update(sample.state.delivered, stream.size));
          progress.stop();
          if (complete)
            process.stderr.write(
              `done: ${stream.size} samples to stdout in ${seconds(start)}s\n${failureLine(stream.stats)}`,
            );
        }
      } finally {
        progress.stop();
        await context.close();
        await plan.close?.(); // a spec's plan: its temporary folder goes
      }
    });
}

/**
 * One partition as a tar on stdout (the shared partition loop). A reader that goes away (`| head -c 1000` closes
 * the pipe: EPIPE) ends the run quietly, stops the stream and returns false.
 */
async function tarToStdout(stream: Stream, onSample: (sample: StreamSample) => void): Promise<boolean> {
  let readerGone = false;
  // Stays attached: a write still queued when the pipe broke reports EPIPE after the pipeline has settled.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' || readerGone) return;
    readerGone = true;
    void stream.close();
  });
  const { partitionTar } = await import('../stream/tar-writer.js'); // loaded with the engine (engine())
  const tar = await partitionTar(stream, { onSample });
  let pipeError: unknown;
  const piping = pipeline(tar.readable, process.stdout).catch((err: unknown) => (pipeError = err));
  try {
    await tar.done;
    await piping;
  } catch (err) {
    if (!readerGone) throw err;
  }
  if (readerGone) {
    tar.destroy();
    return false;
  }
  if (pipeError !== undefined) throw pipeError;
  return true;
}

function seconds(start: number): string {
  return ((performance.now() - start) / 1000).toFixed(1);
}

function failureLine(stats: StreamStats): string {
  const s = stats.snapshot();
  const top = Object.entries(s.reasons)
    .slice(0, 5)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return (
    `  attempts ${s.attempts}, success rate ${s.success_rate === null ? '-' : (s.success_rate * 100).toFixed(1) + '%'}` +
    `${s.repeats ? `, repeats ${s.repeats}` : ''}${s.cache_hits + s.cache_misses ? `, cache hits ${s.cache_hits}/${s.cache_hits + s.cache_misses}` : ''}` +
    `${top ? `\n  failures: ${top}` : ''}\n`
  );
}
