import { Command } from 'commander';
import { runDemo } from '../demo/run.js';
import { printSummary } from './download.js';
import { toNumber } from './parse.js';
import { showProgress } from './progress-view.js';

export function demoCommand(): Command {
  return new Command('demo')
    .description('Run the main job on the embedded demo data: a local image server of generated images → download → shards + contact sheet')
    .option('--output-folder <dir>', 'where the demo writes everything', 'demo-output')
    .option('--count <n>', 'how many urls the demo list holds', toNumber('--count'), 300)
    .action(async (flags: { outputFolder: string; count: number }) => {
      let stop = () => {};
      const result = await runDemo({
        outputFolder: flags.outputFolder,
        count: flags.count,
        onStart: (p) => (stop = showProgress(p, { label: 'demo download', intervalSeconds: 2 })),
        onDownloaded: () => stop(),
      });
      printSummary(result.download);
      process.stdout.write(
        [
          '',
          `${result.colourMatches} of ${result.delivered} delivered images have the colour their caption names.`,
          `url list:       ${result.urlList}`,
          `shards:         ${result.shards.join(', ')}`,
          `contact sheet:  ${result.contactSheet}  (one row per colour)`,
          '',
          'Read the shards in Python with webdataset:',
          `  import webdataset as wds`,
          `  ds = wds.WebDataset("${result.shards[0] ?? ''}").decode("pil").to_tuple("jpg", "txt")`,
          '',
        ].join('\n'),
      );
    });
}
