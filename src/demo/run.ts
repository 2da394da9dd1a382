import { mkdir, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadPlan, type Plan } from '../select/index.js';
import { createStreamContext, streamToFolder, type StreamFolderSummary } from '../stream/index.js';
import { readTarSamples } from '../io/tar-read.js';
import { writeContactSheet } from './contact-sheet.js';
import { buildDemoWorld, type DemoWorldFiles } from './world-index.js';
import { demoImage, startDemoServer, type DemoServer } from './world.js';

export interface DemoOptions {
  outputFolder: string;
  /** Images in the demo world (every 9th link dead, every 23rd not an image). */
  count: number;
  /** Samples asked of each query: red, blue, green. */
  queries?: { name: string; text: string; count: number }[];
  onPlan?: (plan: Plan) => void;
  onSample?: (delivered: number, size: number) => void;
}

export interface DemoResult {
  outputFolder: string;
  world: DemoWorldFiles;
  plan: Plan;
  stream: StreamFolderSummary;
  shards: string[];
  contactSheet: string;
  /** The contact sheet's row labels, top to bottom: the spec's queries in order. */
  contactSheetRows: string[];
  /** Delivered samples whose pixels have the colour their query names. */
  colourMatches: number;
  delivered: number;
}

/**
 * The demo job: the demo world (generated images on 127.0.0.1, some links dead or not images, embedded by
 * color-CLIP into an index) → a spec of colour queries → the streaming loader, exactly as training would use it,
 * written to webdataset shards → a contact sheet labelled by query.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const out = resolve(options.outputFolder);
  await mkdir(out, { recursive: true });
  const server = await startDemoServer();
  try {
    const world = await buildDemoWorld(join(out, 'world'), {
      serverUrl: server.url,
      count: options.count,
      queries: options.queries,
    });
    const plan = await loadPlan(world.specPath);
    await plan.pending;
    options.onPlan?.(plan);
    const context = await createStreamContext(plan);
    const shardsDir = join(out, 'shards');
    let stream: StreamFolderSummary;
    try {
      await rm(shardsDir, { recursive: true, force: true });
      stream = await streamToFolder(plan, {
        folder: shardsDir,
        partition: { index: 0, count: 1 },
        epoch: 0,
        resume: false,
        numberSamplePerShard: 100,
        context,
        onSample: options.onSample,
      });
    } finally {
      await context.close();
      await plan.close?.();
    }
    const shards = (await readdir(shardsDir))
      .filter((f) => f.endsWith('.tar'))
      .sort()
      .map((f) => join(shardsDir, f));
    const thumbs: { label: string; image: Buffer }[] = [];
    let colourMatches = 0;
    let delivered = 0;
    for (const shard of shards) {
      for await (const sample of readTarSamples(shard)) {
        const meta = JSON.parse(String(sample.json)) as { query: string; id: number };
        const image = sample.jpg as Buffer;
        delivered++;
        if ((await looksLike(image, demoImage(meta.id).rgb)) && demoImage(meta.id).colour === meta.query)
          colourMatches++;
        thumbs.push({ label: meta.query, image });
      }
    }
    const contactSheet = join(out, 'contact-sheet.png');
    const sheet = await writeContactSheet(contactSheet, thumbs, { order: plan.header.queries.map((q) => q.name) });
    return {
      outputFolder: out,
      world,
      plan,
      stream,
      shards,
      contactSheet,
      contactSheetRows: sheet.labels,
      colourMatches,
      delivered,
    };
  } finally {
    await server.close();
  }
}

/** The demo world kept alive for other programs (the Python tests, a notebook): images are served until stopped. */
export async function startDemoWorld(
  dir: string,
  count: number,
): Promise<{ world: DemoWorldFiles; server: DemoServer }> {
  const server = await startDemoServer();
  try {
    const world = await buildDemoWorld(resolve(dir), { serverUrl: server.url, count });
    return { world, server };
  } catch (err) {
    await server.close();
    throw err;
  }
}

async function looksLike(image: Buffer, rgb: readonly number[]): Promise<boolean> {
  const { default: sharp } = await import('sharp');
  const { channels } = await sharp(image).stats();
  return channels.slice(0, 3).every((c, i) => Math.abs(c.mean - rgb[i]!) < 40);
}
