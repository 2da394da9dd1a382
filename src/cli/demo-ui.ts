import { loadClipModel } from '../clip/index.js';
import { startDemoWorld } from '../demo/run.js';
import { createFetcher } from '../fetch/index.js';
import { openIndex } from '../index/index.js';
import { loadPlan } from '../select/index.js';
import { createServer } from '../server/app.js';
import { openServedStream } from '../server/streams.js';
import { tellOnStderr } from '../select/plan-warnings.js';

/**
 * `clipstream demo --ui`: the demo world served again (its images, index and model) and the page of `clipstream
 * serve` over it, with the demo's spec as the stream `demo`, streams startable from the page; until Ctrl-C.
 */
export async function serveDemoUi(worldDir: string, count: number, port: number): Promise<void> {
  const { world, server: images } = await startDemoWorld(worldDir, count);
  const index = await openIndex(world.indexDir);
  const model = await loadClipModel(world.modelDir);
  const { stream, context } = await openServedStream('demo', await loadPlan(world.specPath), tellOnStderr);
  // The demo world lives on 127.0.0.1: thumbnails and streams must reach it.
  const fetcher = createFetcher({ allowPrivateNetworks: true, timeoutMs: 10_000, maxBytes: 20 * 1024 * 1024 });
  const app = createServer({
    indices: new Map([['demo', index]]),
    model,
    fetcher,
    streams: new Map([['demo', stream]]),
    web: {
      indexDirs: new Map([['demo', world.indexDir]]),
      modelDir: world.modelDir,
      allowNewStreams: true,
      allowPrivateNetworks: true,
    },
  });
  const address = await app.listen({ port, host: '127.0.0.1' });
  process.stdout.write(
    [
      '',
      `The demo's index and stream in your browser: ${address}/`,
      `  explorer: search "red", move the threshold; spec: build one and plan it; dashboard: ${address}/#dashboard`,
      `  stream demo: ${address}/streams/demo/{0..P-1}.tar?partitions=P (Ctrl-C stops it all)`,
      '',
    ].join('\n'),
  );
  const stop = async () => {
    await app.close();
    await fetcher.close();
    await context.close();
    await model.close();
    index.close();
    await images.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
