import { readdir, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { download } from '../../src/download/run.js';
import { demoImage, startDemoServer } from '../../src/demo/world.js';
import { readTarSamples } from '../../src/io/tar-read.js';

/**
 * Webdataset shards of the demo world made by `download` (one shard of up to 100 samples in `folder/shards`):
 * the input of the inference / index / clip back tests. Returns how many samples the shards hold.
 */
export async function downloadDemoShards(
  folder: string,
  count: number,
): Promise<{ delivered: number; shards: string }> {
  await mkdir(folder, { recursive: true });
  const server = await startDemoServer();
  try {
    const urlList = join(folder, 'urls.csv');
    const lines = ['url,caption,colour'];
    for (let id = 0; id < count; id++)
      lines.push(`${server.url}/images/${id}.jpg,"${demoImage(id).caption}",${demoImage(id).colour}`);
    await writeFile(urlList, lines.join('\n') + '\n');
    const shards = join(folder, 'shards');
    await download({
      urlList,
      inputFormat: 'csv',
      captionCol: 'caption',
      saveAdditionalColumns: ['colour'],
      outputFolder: shards,
      outputFormat: 'webdataset',
      imageSize: 128,
      resizeMode: 'center_crop',
      numberSamplePerShard: 100,
      threadCount: 32,
      timeout: 5,
      incrementalMode: 'overwrite',
      allowPrivateNetworks: true,
    });
    let delivered = 0;
    for (const f of (await readdir(shards)).filter((n) => n.endsWith('.tar'))) {
      for await (const _ of readTarSamples(join(shards, f))) delivered++;
    }
    return { delivered, shards };
  } finally {
    await server.close();
  }
}
