import { Command } from 'commander';
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
      'a webdataset tar, a folder of tars (download output), or a folder of images',
      toLocalPath('--input'),
    )
    .requiredOption(
      '--output-folder <dir>',
      'embedding folder to write (img_emb/, text_emb/, metadata/)',
      toLocalPath('--output-folder'),
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
    .action(
      async (flags: {
        input: string;
        outputFolder: string;
        model: string;
        allowRemote: boolean;
        batchSize: number;
        partitionSize: number;
      }) => {
        const start = performance.now();
        const progress = countProgress('inference', 'images', { totalKnown: false });
        const summary = await runInference({ ...flags, onProgress: (done) => progress.update(done) }).finally(() =>
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
