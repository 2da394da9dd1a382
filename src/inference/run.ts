import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { basename, extname, join, relative } from 'node:path';
import { batch } from '../core/async.js';
import sharp from 'sharp';
import { inputNotFound } from '../core/errors.js';
import { readNpyImage } from '../image/index.js';
import { loadClipModel, type ClipModel } from '../clip/index.js';
import { MAX_JSON_DEPTH, nestedDeeperThan } from '../io/json-value.js';
import { openByteSource, sequentialChunks } from '../io/byte-source.js';
import { writeNpy } from '../io/npy.js';
import { checkBucket, isS3Url, s3Join, s3List, s3Put } from '../io/s3.js';
import { inferColumnTypeOf, openParquetWriter, type ParquetColumn } from '../io/parquet-write.js';
import { readTarSamples } from '../io/tar-read.js';

export interface InferenceOptions {
  /** A webdataset tar, a folder of tars (our download output), or a folder of images. */
  input: string;
  outputFolder: string;
  /** A CLIP model folder (ONNX export), or a hub id with allowRemote. */
  model: string;
  allowRemote?: boolean;
  batchSize?: number;
  /** Images per partition for image folders (tars give one partition each). */
  partitionSize?: number;
  onProgress?: (done: number) => void;
}

export interface InferenceSummary {
  outputFolder: string;
  partitions: string[];
  count: number;
  dim: number;
  withText: boolean;
  /** image_path of every image left out because it does not decode. */
  skipped: string[];
  /** Samples embedded without their json's fields (malformed, not an object, nested too deep): member and why. */
  metadataLeftOut: string[];
}

interface Item {
  /** Encoded bytes; null for an npy member that is not an image (left out like any image that does not decode). */
  image: Buffer | null;
  caption: string | null;
  meta: Record<string, unknown>;
}

export interface Partition {
  name: string;
  /** The tar it is read from (tar partitions). */
  source?: string;
  items: AsyncIterable<Item>;
  /** Filled while `items` is read: samples whose json fields were left out, and why. */
  metadataLeftOut: string[];
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp']);

/**
 * Images (our webdataset shards or a plain folder) → a clip-retrieval embedding folder: `img_emb/img_emb_{P}.npy`
 * (float16, L2-normalised), `text_emb/text_emb_{P}.npy` when captions exist, `metadata/metadata_{P}.parquet` with
 * `image_path`, `caption` and the sample json's fields. One partition per tar; partition names are zero-padded so
 * lexicographic order (what every reader uses) is numeric order.
 */
export async function runInference(o: InferenceOptions): Promise<InferenceSummary> {
  const partitions = await listPartitions(o.input, o.partitionSize ?? 10_000);
  const model = await loadClipModel(o.model, { allowRemote: o.allowRemote ?? false });
  await prepareOutput(o.outputFolder);
  let count = 0;
  let withText = false;
  const skipped: string[] = [];
  try {
    for (const partition of partitions) {
      const result = await embedPartition(partition, model, o, () => {
        count++;
        o.onProgress?.(count);
      });
      withText ||= result.withText;
      skipped.push(...result.skipped);
    }
  } finally {
    await model.close();
  }
  const metadataLeftOut = partitions.flatMap((p) => p.metadataLeftOut);
  return {
    outputFolder: o.outputFolder,
    partitions: partitions.map((p) => p.name),
    count,
    dim: model.dim,
    withText,
    skipped,
    metadataLeftOut,
  };
}

/**
 * Embeddings of one partition are held in memory until it is written (≤ partition size × dim floats: 20 MB for
 * 10 000 × 512), so the three files are written once each and stay aligned row for row.
 */
export async function embedPartition(p: Partition, model: ClipModel, o: InferenceOptions, tick: () => void) {
  const imageRows: Float32Array[] = [];
  const textRows: Float32Array[] = [];
  const metas: Record<string, unknown>[] = [];
  let anyCaption = false;
  const skipped: string[] = [];
  for await (const items of batch(p.items, o.batchSize ?? 32)) {
    // An npy member that is not an image goes in as no bytes: it does not decode either.
    const vectors = await model.tryEncodeImages(items.map((g) => g.image ?? Buffer.alloc(0)));
    // An image that does not decode is left out, with its row: the three files stay aligned.
    const group = items.filter((g, i) => {
      if (vectors[i] === null) skipped.push(String(g.meta.image_path));
      return vectors[i] !== null;
    });
    const captions = group.map((g) => g.caption ?? '');
    anyCaption ||= group.some((g) => g.caption !== null);
    const texts = await model.encodeText(captions);
    for (const v of vectors) if (v !== null) imageRows.push(v);
    textRows.push(...texts);
    for (const g of group) {
      metas.push(g.meta);
      tick();
    }
  }
  await writePartition(
    o.outputFolder,
    p.name,
    { imageRows, textRows: anyCaption ? textRows : undefined, metas },
    model.dim,
  );
  return { withText: anyCaption, skipped, count: metas.length };
}

/** The output's folders (local), or a check that its bucket exists (s3://). */
export async function prepareOutput(outputFolder: string): Promise<void> {
  if (isS3Url(outputFolder)) return checkBucket(outputFolder);
  const dirs = ['img_emb', 'text_emb', 'metadata'].map((d) => join(outputFolder, d));
  await Promise.all(dirs.map((d) => mkdir(d, { recursive: true })));
}

/** The partition file holding its metadata: written last, so a partition with it is done. */
export function metadataName(partition: string): string {
  return `metadata/metadata_${partition}.parquet`;
}

/**
 * A partition's three files: in place in a local folder; for s3:// written in a local staging folder, then uploaded
 * embeddings first and the metadata last (each object whole or absent).
 */
async function writePartition(
  outputFolder: string,
  name: string,
  rows: { imageRows: Float32Array[]; textRows: Float32Array[] | undefined; metas: Record<string, unknown>[] },
  dim: number,
): Promise<void> {
  const remote = isS3Url(outputFolder);
  const folder = remote ? await mkdtemp(join(tmpdir(), 'clipstream-inference-')) : outputFolder;
  const files = [`img_emb/img_emb_${name}.npy`, ...(rows.textRows ? [`text_emb/text_emb_${name}.npy`] : [])];
  try {
    if (remote) await Promise.all(['img_emb', 'text_emb', 'metadata'].map((d) => mkdir(join(folder, d))));
    await writeNpy(join(folder, files[0]!), rows.imageRows, dim, 'float16');
    if (rows.textRows) await writeNpy(join(folder, files[1]!), rows.textRows, dim, 'float16');
    await writeMetadata(join(folder, metadataName(name)), rows.metas);
    if (!remote) return;
    for (const file of [...files, metadataName(name)])
      await s3Put(s3Join(outputFolder, file), { file: join(folder, file) });
  } finally {
    if (remote) await rm(folder, { recursive: true, force: true });
  }
}

async function writeMetadata(path: string, rows: Record<string, unknown>[]): Promise<void> {
  const names = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const columns: ParquetColumn[] = names.map((name) => ({ name, type: inferColumnTypeOf(rows.map((r) => r[name])) }));
  // the metadata file says its partition is done: written aside and renamed, never seen half-written
  const partial = `${path}.partial`;
  const writer = await openParquetWriter(partial, columns);
  try {
    for (const row of rows) await writer.writeRow(row);
    await writer.close();
    await rename(partial, path);
  } catch (err) {
    await writer.abort().catch(() => {}); // already closed when the rename failed
    await rm(partial, { force: true });
    throw err;
  }
}

export async function listPartitions(input: string, partitionSize: number): Promise<Partition[]> {
  if (isS3Url(input)) return listObjectPartitions(input);
  const info = await stat(input).catch(() => undefined);
  if (!info)
    throw inputNotFound(`inference input not found: ${input}`, {
      hint: 'Pass a webdataset tar, a folder of tars, or a folder of images.',
    });
  if (info.isFile()) return [tarPartition(input, 0)];
  const files = (await walk(input)).sort();
  const tars = files.filter((f) => f.endsWith('.tar'));
  if (tars.length > 0) return tars.map((tar, i) => tarPartition(tar, i));
  const images = files.filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase()));
  if (images.length === 0) {
    throw inputNotFound(`no .tar files and no images (.jpg .jpeg .png .webp) in ${input}`, {
      hint: 'Pass the output folder of `clipstream download --output-format webdataset`, or a folder of images.',
    });
  }
  const partitions: Partition[] = [];
  for (let start = 0, i = 0; start < images.length; start += partitionSize, i++) {
    const slice = images.slice(start, start + partitionSize);
    partitions.push({ name: String(i).padStart(5, '0'), items: folderItems(input, slice), metadataLeftOut: [] });
  }
  return partitions;
}

/** An s3:// tar, or every `.tar` object under a prefix (at any depth), sorted: one partition each. */
async function listObjectPartitions(input: string): Promise<Partition[]> {
  if (input.endsWith('.tar')) return [tarPartition(input, 0)];
  const tars = (await s3List(input, { recursive: true })).filter((n) => n.endsWith('.tar'));
  if (tars.length === 0) {
    throw inputNotFound(`no .tar objects under ${input}`, {
      hint: 'On S3, inference reads webdataset tars (clipstream download --output-format webdataset); copy an image folder locally.',
    });
  }
  return tars.map((name, i) => tarPartition(s3Join(input, name), i));
}

/** `00042.tar` → `00042`; other names get their position, zero-padded. */
function tarPartitionName(path: string, position: number): string {
  const stem = basename(path, '.tar');
  return /^\d+$/.test(stem) ? stem : String(position).padStart(5, '0');
}

export function tarPartition(path: string, position: number): Partition {
  const metadataLeftOut: string[] = [];
  return {
    name: tarPartitionName(path, position),
    source: path,
    items: tarItems(path, metadataLeftOut),
    metadataLeftOut,
  };
}

/** A tar's bytes: the local file, or an s3:// object read sequentially through its byte source. */
async function tarStream(path: string): Promise<string | Readable> {
  if (!isS3Url(path)) return path;
  const { source } = await openByteSource(path);
  return Readable.from(sequentialChunks(source));
}

async function* tarItems(path: string, metadataLeftOut: string[]): AsyncGenerator<Item> {
  for await (const sample of readTarSamples(await tarStream(path))) {
    const imageKey = ['jpg', 'jpeg', 'png', 'webp', 'npy'].find((ext) => sample[ext] !== undefined);
    if (!imageKey) continue;
    const image = imageKey === 'npy' ? await npyAsPng(sample.npy as Buffer) : (sample[imageKey] as Buffer);
    const parsed = sample.json === undefined ? {} : sampleFields(sample.json);
    if (typeof parsed === 'string') metadataLeftOut.push(`${basename(path)}/${sample.__key__}.json: ${parsed}`);
    const json = typeof parsed === 'string' ? {} : parsed;
    const caption =
      sample.txt !== undefined ? String(sample.txt) : typeof json.caption === 'string' ? json.caption : null;
    yield {
      image,
      caption,
      meta: { image_path: `${basename(path)}/${sample.__key__}.${imageKey}`, ...json, caption },
    };
  }
}

/**
 * A sample json's fields, or why they cannot be kept: one sample whose json is damaged loses its metadata, not the
 * run. A value nested deeper than MAX_JSON_DEPTH would overflow the stack when the metadata parquet is written.
 */
function sampleFields(bytes: Buffer | string): Record<string, unknown> | string {
  let value: unknown;
  try {
    value = JSON.parse(String(bytes));
  } catch (err) {
    return `not valid JSON (${(err as Error).message})`;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not a JSON object';
  if (nestedDeeperThan(value)) return `nested deeper than ${MAX_JSON_DEPTH} levels`;
  return value as Record<string, unknown>;
}

async function* folderItems(root: string, files: string[]): AsyncGenerator<Item> {
  for (const file of files) {
    const captionFile = file.slice(0, -extname(file).length) + '.txt';
    const caption = await readFile(captionFile, 'utf8').catch(() => null);
    yield { image: await readFile(file), caption, meta: { image_path: relative(root, file), caption } };
  }
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory())
      for (const file of await walk(path)) out.push(file); // push(...files) overflows at ~10⁵
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** The encoders read encoded images: an npy sample (`--encode-format npy`) becomes a lossless PNG of its pixels. */
async function npyAsPng(bytes: Buffer): Promise<Buffer | null> {
  const image = readNpyImage(bytes);
  if (!image) return null;
  return sharp(image.pixels, { raw: { width: image.width, height: image.height, channels: 3 } })
    .png({ compressionLevel: 0 })
    .toBuffer();
}
