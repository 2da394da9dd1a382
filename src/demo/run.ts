import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ProgressCounter } from '../download/progress.js';
import { download, type DownloadSummary } from '../download/run.js';
import { readTarSamples } from '../io/tar-read.js';
import { writeContactSheet } from './contact-sheet.js';
import { demoImage, startDemoServer } from './world.js';

export interface DemoOptions {
  outputFolder: string;
  count: number;
  onStart?: (progress: ProgressCounter) => void;
  /** The download step is over (the progress view can stop before the contact sheet is drawn). */
  onDownloaded?: () => void;
}

export interface DemoResult {
  outputFolder: string;
  urlList: string;
  shards: string[];
  contactSheet: string;
  download: DownloadSummary;
  /** Delivered samples whose pixels are the colour their caption names. */
  colourMatches: number;
  delivered: number;
}

/**
 * The demo job on the embedded demo world: generated images served on 127.0.0.1 (some links dead, some pages
 * that are not images) → `download` to webdataset shards → a contact sheet labelled by colour.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const out = resolve(options.outputFolder);
  await mkdir(out, { recursive: true });
  const server = await startDemoServer();
  try {
    const urlList = join(out, 'urls.csv');
    await writeFile(urlList, urlListCsv(server.url, options.count));
    const summary = await download(
      {
        urlList,
        inputFormat: 'csv',
        captionCol: 'caption',
        saveAdditionalColumns: ['colour'],
        outputFolder: join(out, 'shards'),
        outputFormat: 'webdataset',
        imageSize: 128,
        resizeMode: 'center_crop',
        numberSamplePerShard: 100,
        threadCount: 32,
        timeout: 5,
        incrementalMode: 'overwrite',
        allowPrivateNetworks: true, // the demo world lives on 127.0.0.1
      },
      { onStart: (p) => options.onStart?.(p) },
    );
    options.onDownloaded?.();
    const shards = (await readdir(join(out, 'shards'))).filter((f) => f.endsWith('.tar')).sort().map((f) => join(out, 'shards', f));
    const thumbs: { label: string; image: Buffer }[] = [];
    let colourMatches = 0;
    let delivered = 0;
    for (const shard of shards) {
      for await (const sample of readTarSamples(shard)) {
        const meta = JSON.parse(String(sample.json)) as { colour: string; url: string };
        const image = sample.jpg as Buffer;
        delivered++;
        const id = Number(/(\d+)\.jpg$/.exec(meta.url)?.[1]);
        if (await looksLike(image, demoImage(id).rgb)) colourMatches++;
        thumbs.push({ label: meta.colour, image });
      }
    }
    const contactSheet = join(out, 'contact-sheet.png');
    await writeContactSheet(contactSheet, thumbs);
    return { outputFolder: out, urlList, shards, contactSheet, download: summary, colourMatches, delivered };
  } finally {
    await server.close();
  }
}

function urlListCsv(base: string, count: number): string {
  const lines = ['url,caption,colour'];
  for (let id = 0; id < count; id++) {
    const img = demoImage(id);
    lines.push(`${base}/images/${id}.jpg,"${img.caption}",${img.colour}`);
  }
  return lines.join('\n') + '\n';
}

async function looksLike(image: Buffer, rgb: readonly number[]): Promise<boolean> {
  const { default: sharp } = await import('sharp');
  const { channels } = await sharp(image).stats();
  return channels.slice(0, 3).every((c, i) => Math.abs(c.mean - rgb[i]!) < 40);
}
