import { Command } from 'commander';
import { dirname, relative } from 'node:path';
import { runDemo, startDemoWorld } from '../demo/run.js';
import { countProgress } from './count-progress.js';
import { toNumber } from './parse.js';
import { planTable } from './plan.js';

export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'Run the main job on the embedded demo data: colour queries over a local world of generated images, streamed into webdataset shards + a contact sheet',
    )
    .option('--output-folder <dir>', 'where the demo writes everything', 'demo-output')
    .option('--count <n>', 'images in the demo world', toNumber('--count'), 1200)
    .option(
      '--world <dir>',
      'only build the demo world into DIR and serve its images until stopped (for notebooks and the Python tests)',
    )
    .option(
      '--ui',
      'after the demo, keep its world served and open the web page over its index and stream (until Ctrl-C)',
      false,
    )
    .option('--port <port>', "with --ui: the page's port (0: any free port)", toNumber('--port'), 0)
    .action(async (flags: { outputFolder: string; count: number; world?: string; ui: boolean; port: number }) => {
      if (flags.world !== undefined) return serveWorld(flags.world, flags.count);
      // Started with the stream, so that its rate does not count the world's build.
      let progress: ReturnType<typeof countProgress> | undefined;
      const result = await runDemo({
        outputFolder: flags.outputFolder,
        count: flags.count,
        onPlan: (plan) => {
          process.stdout.write(
            `demo world: ${flags.count} images, 1 in 9 links dead, 1 in 23 not an image\n\n${planTable(plan, 1)}\n`,
          );
          progress = countProgress('demo stream', 'samples');
        },
        onSample: (done, size) => progress?.update(done, size),
      }).finally(() => progress?.stop());
      const s = result.stream.stats.snapshot();
      const rel = (p: string) => relative(process.cwd(), p) || '.';
      process.stdout.write(
        [
          `streamed ${result.delivered} samples (${Object.entries(result.stream.byQuery)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}) ` +
            `from ${s.attempts} attempts; dead links replaced: ${s.failures} (${Object.entries(s.reasons)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')})`,
          `${result.colourMatches} of ${result.delivered} images have the colour their query names.`,
          '',
          `spec:           ${rel(result.world.specPath)}`,
          `shards:         ${result.shards.map(rel).join(', ')}  (+ parquet, manifest.jsonl)`,
          `contact sheet:  ${rel(result.contactSheet)}  (one row per query)`,
          '',
          ...pythonLines(rel(dirname(result.world.specPath))),
          flags.ui
            ? ''
            : `To look at the demo's index and stream in the browser (explorer, spec builder, dashboard): ./clipstream demo --ui\n`,
        ].join('\n'),
      );
      if (flags.ui)
        await (await import('./demo-ui.js')).serveDemoUi(dirname(result.world.specPath), flags.count, flags.port);
    });
}

/**
 * How to train on the demo stream from Python. The demo's image server stops with the demo, so the lines start
 * with the command that serves the world again (same folder, same spec, the spec rewritten for the new server).
 */
export function pythonLines(worldDir: string): string[] {
  return [
    "The same stream in PyTorch: the demo's images were served only while it ran; serve them again with",
    `  ./clipstream demo --world ${worldDir}        # leave it running (Ctrl-C stops it), then in Python (pip install ./python):`,
    '  from clipstream import serve, ClipStreamDataset',
    '  from torch.utils.data import DataLoader',
    `  with serve("${worldDir}/spec.yaml") as server:`,
    '      loader = DataLoader(ClipStreamDataset(server.url, decode="tensor"), batch_size=32, num_workers=2)',
    '      for batch in loader: ...',
    '',
  ];
}

async function serveWorld(dir: string, count: number): Promise<void> {
  const { world, server } = await startDemoWorld(dir, count);
  process.stdout.write(
    `demo world ready: spec=${world.specPath} images=${server.url} index=${world.indexDir} model=${world.modelDir}\n`,
  );
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
