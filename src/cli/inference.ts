import { Command } from 'commander';
import { invalidOption } from '../core/errors.js';
import { runInference } from '../inference/run.js';
import { countProgress } from './count-progress.js';
import { toLocalPath, toNumber } from './parse.js';

/** `clipstream inference`: images → clip-retrieval embedding folder, so url list → download → inference → index runs without Python. */
export function inferenceCommand(): Command {
  return new Command('inference')
    .description(
      'Embed images (webdataset tars or an image folder) with a CLIP model into a clip-retrieval embedding folder',
    )
    .requiredOption(
      '--input <path>',
      'a webdataset tar, a folder of tars (download output), or a folder of images; or s3://bucket/prefix of tars',
      toLocalPath('--input', { s3: true }),
    )
    .requiredOption(
      '--output-folder <dir>',
      'embedding folder to write (img_emb/, text_emb/, metadata/), local or s3://bucket/prefix',
      toLocalPath('--output-folder', { s3: true }),
    )
    .requiredOption('--model <dir>', 'CLIP model folder (ONNX export with tokenizer and preprocessor configs)')
    .option('--allow-remote', 'allow --model to be a hub id downloaded over the network', false)
    .option('--batch-size <n>', 'images per model call', toNumber('--batch-size'), 32)
    .option(
      '--partition-size <n>',
      'images per output partition for image folders',
      toNumber('--partition-size'),
      10_000,
    )
    .option(
      '--distributor <name>',
      'multiprocessing: this machine; queue: one job per tar for clipstream worker processes (--queue)',
      'multiprocessing',
    )
    .option('--queue <url>', "with --distributor queue: the job queue's Redis, redis://HOST:PORT/DB")
    .option(
      '--max-shard-retry <n>',
      'with --distributor queue: times a failed partition runs again',
      toNumber('--max-shard-retry'),
      1,
    )
    .action(
      async (flags: {
        input: string;
        outputFolder: string;
        model: string;
        allowRemote: boolean;
        batchSize: number;
        partitionSize: number;
        distributor: string;
        queue?: string;
        maxShardRetry: number;
      }) => {
        const { distributor, queue, maxShardRetry, ...options } = flags;
        if (checkDistributor(distributor, queue, maxShardRetry) === 'queue') {
          return runQueued({ ...options, maxShardRetry }, queue!);
        }
        const start = performance.now();
        const progress = countProgress('inference', 'images', { totalKnown: false });
        const summary = await runInference({ ...options, onProgress: (done) => progress.update(done) }).finally(() =>
          progress.stop(),
        );
        const seconds = (performance.now() - start) / 1000;
        process.stdout.write(
          `done in ${seconds.toFixed(1)}s: ${summary.count} images → ${summary.partitions.length} partition(s), ${summary.dim} dims` +
            `${summary.withText ? ', with text embeddings' : ''}, into ${summary.outputFolder}\n`,
        );
        if (summary.skipped.length > 0) {
          const shown = summary.skipped.slice(0, 5).join(', ');
          process.stderr.write(
            `clipstream: warning: ${summary.skipped.length} image(s) do not decode and were left out: ${shown}${summary.skipped.length > 5 ? ', …' : ''}\n`,
          );
        }
        if (summary.metadataLeftOut.length > 0) {
          const shown = summary.metadataLeftOut.slice(0, 5).join('; ');
          process.stderr.write(
            `clipstream: warning: ${summary.metadataLeftOut.length} sample(s) embedded without their json's fields: ${shown}${summary.metadataLeftOut.length > 5 ? '; …' : ''}\n`,
          );
        }
      },
    );
}

function checkDistributor(distributor: string, queue: string | undefined, maxShardRetry: number): string {
  if (distributor !== 'multiprocessing' && distributor !== 'queue') {
    throw invalidOption(
      `Expected multiprocessing or queue for --distributor but received ${JSON.stringify(distributor)}`,
    );
  }
  if (distributor === 'queue' && queue === undefined) {
    throw invalidOption('--queue is required with --distributor queue: the Redis every machine reaches', {
      hint: 'For example --queue redis://10.0.0.5:6379/0',
    });
  }
  if (queue !== undefined && distributor !== 'queue') {
    throw invalidOption(`--queue goes with --distributor queue (received --distributor ${distributor})`);
  }
  if (!Number.isInteger(maxShardRetry) || maxShardRetry < 0 || maxShardRetry > 100) {
    throw invalidOption(`Expected an integer 0–100 for --max-shard-retry but received ${maxShardRetry}`);
  }
  return distributor;
}

/** `--distributor queue`: one job per tar, followed until every partition is done or failed. */
async function runQueued(options: Parameters<typeof runInference>[0] & { maxShardRetry: number }, queue: string) {
  const { inferenceQueued } = await import('../queue/inference-head.js');
  const controller = new AbortController();
  const onSigint = () => {
    process.stderr.write('\nleaving the run: it goes on in the queue (run the same command to re-attach)\n');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  const progress = countProgress('inference', 'images', { totalKnown: false });
  let timer: NodeJS.Timeout | undefined;
  try {
    const outcome = await inferenceQueued(options, queue, {
      signal: controller.signal,
      onCounter: (counter) => {
        timer = setInterval(() => progress.update(counter.snapshot().done), 500);
      },
    });
    const { counts: c, run } = outcome;
    process.stdout.write(
      `${outcome.detached ? 'left' : 'done'}: ${c.successes} images embedded into ${c.shardsDone} partition(s) of ${options.outputFolder}, ${run.skipped} already done` +
        `${c.failedToResize > 0 ? `, ${c.failedToResize} image(s) that do not decode left out` : ''}\n`,
    );
    for (const [p, why] of Object.entries(c.failed)) process.stdout.write(`  partition ${p} FAILED: ${why}\n`);
    if (outcome.cancelledShards !== undefined) {
      process.stdout.write(`  the run was cancelled: ${outcome.cancelledShards} partition(s) not done\n`);
    }
    if (outcome.detached) process.exitCode = 130;
    else if (Object.keys(c.failed).length > 0 || outcome.cancelledShards !== undefined) process.exitCode = 1;
  } finally {
    clearInterval(timer);
    progress.stop();
    process.off('SIGINT', onSigint);
  }
}
