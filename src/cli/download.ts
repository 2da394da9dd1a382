import { Command, Option } from 'commander';
import { invalidOption } from '../core/errors.js';
import { IMAGE_FORMATS } from '../core/types.js';
import { basename } from 'node:path';
import type { ProgressCounter } from '../download/progress.js';
import { download, type DownloadSummary } from '../download/run.js';
import {
  downloadNotices,
  HASH_TYPES,
  INCREMENTAL_MODES,
  OUTPUT_FORMATS,
  type DownloadOptionsInput,
} from '../download/options.js';
import { RESIZE_MODES } from '../image/geometry.js';
import { INTERPOLATION_NAMES } from '../image/interpolation.js';
import { INPUT_FORMATS } from '../io/url-list.js';
import { formatDuration, showProgress } from './progress-view.js';
import { toBoolean, toList, toLocalPath, toNumber } from './parse.js';

/**
 * `clipstream download`: img2dataset's options in kebab-case, mapped 1:1 onto `download()`'s options.
 * Long: one declarative line per flag (img2dataset has ~45); the action is its own function.
 */
export function downloadCommand(): Command {
  const num = (flag: string) => toNumber(`--${flag}`);
  const bool = (flag: string) => toBoolean(`--${flag}`);
  // replaces commander's case-sensitive choices check (img2dataset lowercases); the option schema checks the name
  const lower = (value: string) => value.toLowerCase();
  return new Command('download')
    .description("Download, resize and package a url list (img2dataset's options and output layout)")
    .requiredOption(
      '--url-list <path>',
      'url list: a file or a folder of files, local or s3://bucket/prefix',
      toLocalPath('--url-list', { s3: true }),
    )
    .option(
      '--output-folder <dir>',
      'output folder, local or s3://bucket/prefix',
      toLocalPath('--output-folder', { s3: true }),
      'images',
    )
    .addOption(new Option('--input-format <fmt>', 'input format').choices([...INPUT_FORMATS]).default('txt'))
    .option('--url-col <name>', 'column holding the url', 'url')
    .option('--caption-col <name>', 'column holding the caption (written as {key}.txt)')
    .option(
      '--bbox-col <name>',
      'column of boxes [[x_min,y_min,x_max,y_max],…] in [0,1] to blur (faces); saved with the additional columns',
    )
    .option(
      '--save-additional-columns <list>',
      'more input columns to keep, as a JSON list or comma-separated',
      toList('save-additional-columns'),
    )
    .addOption(new Option('--output-format <fmt>', 'output format').choices([...OUTPUT_FORMATS]).default('files'))
    .option('--image-size <px>', 'target size in pixels', num('image-size'), 256)
    .addOption(new Option('--resize-mode <mode>', 'how to resize').choices([...RESIZE_MODES]).default('border'))
    .option('--resize-only-if-bigger [bool]', 'only downscale', bool('resize-only-if-bigger'), false)
    .addOption(
      new Option('--upscale-interpolation <name>', 'filter when enlarging (cv2 names)')
        .choices([...INTERPOLATION_NAMES])
        .argParser(lower)
        .default('lanczos'),
    )
    .addOption(
      new Option('--downscale-interpolation <name>', 'filter when shrinking (cv2 names)')
        .choices([...INTERPOLATION_NAMES])
        .argParser(lower)
        .default('area'),
    )
    .addOption(new Option('--encode-format <fmt>', 'output image format').choices([...IMAGE_FORMATS]).default('jpg'))
    .option('--encode-quality <q>', 'jpg/webp quality 0-100, png compression 0-9', num('encode-quality'), 95)
    .option(
      '--skip-reencode [bool]',
      'keep the original bytes when no resize is needed and the format matches',
      bool('skip-reencode'),
      false,
    )
    .option(
      '--disable-all-reencoding [bool]',
      'write the downloaded bytes as they are: no decode, resize, filter or blur; sizes are null (for benchmarks)',
      bool('disable-all-reencoding'),
      false,
    )
    .option('--min-image-size <px>', 'minimum shorter side of the original', num('min-image-size'), 0)
    .option('--max-image-area <px>', 'maximum area of the original', num('max-image-area'), Infinity)
    .option('--max-aspect-ratio <r>', 'maximum aspect ratio of the original', num('max-aspect-ratio'), Infinity)
    .option('--number-sample-per-shard <n>', 'samples per shard', num('number-sample-per-shard'), 10_000)
    .option('--oom-shard-count <n>', 'digits of shard names', num('oom-shard-count'), 5)
    .option('--thread-count <n>', 'concurrent downloads per process', num('thread-count'), 256)
    .option(
      '--processes-count <n>',
      'worker processes (threads) to use; set it to the number of cores',
      num('processes-count'),
      1,
    )
    .option('--timeout <s>', 'total deadline of one request in seconds (connect + headers + body)', num('timeout'), 10)
    .option('--retries <n>', 'retries for retryable failures (timeouts, 5xx, 429)', num('retries'), 0)
    .addOption(
      new Option('--compute-hash <type>', 'hash of the original bytes')
        .choices([...HASH_TYPES])
        .argParser(lower)
        .default('sha256'),
    )
    .option(
      '--extract-exif [bool]',
      "the original image's EXIF tags as a JSON string in the exif field (exifread's names)",
      bool('extract-exif'),
      true,
    )
    .option(
      '--verify-hash <pair>',
      'check the hash column, e.g. \'["sha256","sha256"]\' ([column, type])',
      toList('verify-hash'),
    )
    .addOption(
      new Option('--incremental-mode <mode>', 'what to do with an existing output folder')
        .choices([...INCREMENTAL_MODES])
        .default('incremental'),
    )
    .option(
      '--max-shard-retry <n>',
      'times the failed shards run again at the end of the job',
      num('max-shard-retry'),
      1,
    )
    .option(
      '--distributor <name>',
      'multiprocessing: shards on --processes-count worker threads; queue: on many machines (--queue, clipstream worker); pyspark and ray are not available',
      'multiprocessing',
    )
    .option(
      '--queue <url>',
      "with --distributor queue: the job queue's Redis, redis://HOST:PORT/DB (every machine must reach it)",
    )
    .option(
      '--subjob-size <n>',
      'accepted for img2dataset compatibility; no effect here (it sizes pyspark batches)',
      num('subjob-size'),
      1000,
    )
    .option(
      '--enable-wandb [bool]',
      'accepted; ignored: clipstream does not log to Weights & Biases (progress is printed, counts are in {shard}_stats.json)',
      bool('enable-wandb'),
      false,
    )
    .option('--wandb-project <name>', 'accepted with --enable-wandb; ignored', 'img2dataset')
    .option('--user-agent-token <token>', 'added to the user agent and used for X-Robots-Tag scoping')
    .option(
      '--disallowed-header-directives <list>',
      "X-Robots-Tag directives that opt an image out; '[]' disables the check",
      toList('disallowed-header-directives'),
    )
    .option('--per-host-concurrency <n>', 'concurrent requests per host', num('per-host-concurrency'), 16)
    .option('--max-bytes <n>', 'largest response body accepted, in bytes', num('max-bytes'), 50 * 1024 * 1024)
    .option(
      '--allow-private-networks [bool]',
      'allow private, loopback and link-local addresses (off: refused after DNS resolution)',
      bool('allow-private-networks'),
      false,
    )
    .option(
      '--progress-interval <s>',
      'seconds between progress lines when not on a terminal',
      num('progress-interval'),
      10,
    )
    .option(
      '--port <port>',
      'serve a live dashboard of the download on http://127.0.0.1:PORT/ while it runs (0: any free port)',
      num('port'),
    )
    .action(async (flags: Record<string, unknown>) => {
      const { progressInterval, verifyHash, port, ...rest } = flags;
      const options: DownloadOptionsInput = { ...(rest as DownloadOptionsInput) };
      if (verifyHash !== undefined) {
        const pair = verifyHash as string[];
        if (pair.length !== 2)
          throw invalidOption(`Expected [column, type] for --verify-hash but received ${JSON.stringify(pair)}`);
        options.verifyHash = pair as [string, 'sha256'];
      }
      let stop = () => {};
      const controller = new AbortController();
      const onSigint = () => {
        if (controller.signal.aborted) process.exit(130);
        process.stderr.write(
          options.distributor === 'queue'
            ? '\nleaving the run: it goes on in the queue (run the same command to re-attach; clipstream jobs cancel stops it)\n'
            : '\nstopping: finishing the shards in flight (Ctrl-C again to quit now; rerun to resume)\n',
        );
        controller.abort();
      };
      process.on('SIGINT', onSigint);
      let counter: ProgressCounter | undefined;
      const dashboard =
        port === undefined
          ? undefined
          : await startDashboard(port as number, () => counter, String(options.outputFolder ?? 'images'));
      try {
        const summary = await download(options, {
          signal: controller.signal,
          onStart: (c, parsed) => {
            counter = c;
            for (const notice of downloadNotices(parsed)) process.stderr.write(`clipstream: ${notice}\n`);
            stop = showProgress(c, { label: 'download', intervalSeconds: progressInterval as number });
          },
          onShardRetry: (round, shards) =>
            process.stderr.write(`\nretrying ${shards} failed shard${shards > 1 ? 's' : ''}, round ${round}\n`),
        });
        stop();
        printSummary(summary);
        // img2dataset exits 0 whatever happened; a job that saved nothing or left shards failed is a failure
        const failed = summary.failedShards.length > 0 || summary.cancelledShards !== undefined;
        if (summary.detached) process.exitCode = 130;
        else if (failed || summary.noSuccessHint !== undefined) process.exitCode = 1;
      } finally {
        stop();
        process.off('SIGINT', onSigint);
        await dashboard?.close();
      }
    });
}

/** The dashboard of `--port` (src/server/job-dashboard.ts), loaded only when asked for. */
async function startDashboard(port: number, counter: () => ProgressCounter | undefined, outputFolder: string) {
  const { downloadJob, startJobDashboard } = await import('../server/job-dashboard.js');
  const dashboard = await startJobDashboard({
    port,
    jobs: [downloadJob(basename(outputFolder) || 'download', counter)],
  });
  process.stderr.write(`download dashboard: ${dashboard.url}/#dashboard\n`);
  return dashboard;
}

export function printSummary(s: DownloadSummary): void {
  const rate = s.durationSeconds > 0 ? s.count / s.durationSeconds : 0;
  const pct = (n: number) => (s.count === 0 ? '0.0' : ((100 * n) / s.count).toFixed(1));
  const out = [
    `done in ${formatDuration(s.durationSeconds)}: ${s.count} samples at ${rate.toFixed(1)} samples/s into ${s.outputFolder}`,
    `  success ${s.successes} (${pct(s.successes)}%), failed to download ${s.failedToDownload}, failed to resize ${s.failedToResize}`,
    `  shards: ${s.shardsWritten} written, ${s.shardsSkipped} already done`,
  ];
  const top = Object.entries(s.reasons).slice(0, 5);
  if (top.length > 0) out.push(`  top failure reasons: ${top.map(([r, n]) => `${r} ${n} (${pct(n)}%)`).join(', ')}`);
  for (const f of s.failedShards) out.push(`  shard ${f.shardId} FAILED: ${f.message}`);
  if (s.failedShards.length > 0) {
    const retried =
      s.shardRetryRounds > 0
        ? `retried ${s.shardRetryRounds} time${s.shardRetryRounds > 1 ? 's' : ''} (--max-shard-retry); `
        : '';
    out.push(`  ${retried}rerun the same command to retry the failed shards (--incremental-mode incremental)`);
  }
  if (s.noSuccessHint !== undefined && !s.detached) out.push(`  ${s.noSuccessHint}`);
  if (s.detached) out.push('  left while the run goes on in the queue: run the same command to re-attach');
  if (s.cancelledShards !== undefined) {
    out.push(`  the run was cancelled: ${s.cancelledShards} shard(s) not done; rerun the same command to do them`);
  }
  process.stdout.write(out.join('\n') + '\n');
}
