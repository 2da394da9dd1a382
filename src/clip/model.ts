/**
 * CLIP text and image encoders on transformers.js (onnxruntime-node), loaded from a model folder laid out like a
 * Xenova/clip-* export. The generated color-CLIP and a real `Xenova/clip-vit-base-patch32` take the same path.
 *
 * Offline by default: every transformers.js call gets `local_files_only: true`, and a name that is not a local
 * folder is refused unless `allowRemote` is set. Global `env` of transformers.js is left alone.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { PreTrainedTokenizer, PreTrainedModel, ImageProcessor, Tensor } from '@huggingface/transformers';
import sharp from 'sharp';
import { ClipstreamError, defineError, inputMalformed, internalError, invalidOption } from '../core/errors.js';

export interface ClipModel {
  /** Embedding size. */
  readonly dim: number;
  /** The model's name: config `_name_or_path`, else the folder name or hub id. */
  readonly name: string;
  /** One L2-normalised embedding per text, in order. */
  encodeText(texts: string[]): Promise<Float32Array[]>;
  /** One L2-normalised embedding per encoded image (jpg/png/webp/… bytes), in order; rejects if one does not decode. */
  encodeImages(images: Buffer[]): Promise<Float32Array[]>;
  /** The same, with null for an image that does not decode (a folder of images from anywhere has some). */
  tryEncodeImages(images: Buffer[]): Promise<(Float32Array | null)[]>;
  /** Releases the ONNX sessions; the model cannot be used afterwards. */
  close(): Promise<void>;
}

export type ClipDtype = 'fp32' | 'fp16' | 'q8';

export interface LoadClipOptions {
  /** Allow a Hugging Face hub id and downloads. Default false: offline, local folders only. */
  allowRemote?: boolean;
  /** Which ONNX weights: fp32 → onnx/*_model.onnx (default), fp16 → *_model_fp16.onnx, q8 → *_model_quantized.onnx. */
  dtype?: ClipDtype;
  /** Texts or images per ONNX run. Default 32. */
  batchSize?: number;
  /** Where transformers.js caches downloads (only with allowRemote). Default: its own cache folder. */
  cacheDir?: string;
}

const modelInvalid = defineError('MODEL_INVALID');

const DTYPE_SUFFIX: Record<ClipDtype, string> = { fp32: '', fp16: '_fp16', q8: '_quantized' };

/** The files a CLIP model folder must hold (for a dtype). */
export function requiredClipFiles(dtype: ClipDtype = 'fp32'): string[] {
  const suffix = DTYPE_SUFFIX[dtype];
  return [
    'config.json',
    'preprocessor_config.json',
    'tokenizer.json',
    'tokenizer_config.json',
    `onnx/text_model${suffix}.onnx`,
    `onnx/vision_model${suffix}.onnx`,
  ];
}

const LAYOUT_HINT =
  'A CLIP model folder holds config.json (model_type "clip"), preprocessor_config.json, tokenizer.json, ' +
  'tokenizer_config.json, onnx/text_model.onnx (input_ids, attention_mask → text_embeds) and ' +
  'onnx/vision_model.onnx (pixel_values → image_embeds), as in the Xenova/clip-* exports. ' +
  'A test model can be generated with writeColorClip() (scripts/make-color-clip.mjs).';

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}

/** Checks a local model folder up front, so the user never sees transformers.js's own missing-file errors. */
async function checkModelDir(dir: string, dtype: ClipDtype): Promise<Record<string, unknown>> {
  const required = requiredClipFiles(dtype);
  const present = await Promise.all(required.map((f) => isFile(join(dir, f))));
  const missing = required.filter((_, i) => !present[i]);
  if (missing.length > 0) {
    throw modelInvalid(`Expected a CLIP model folder at ${dir} but it is missing ${missing.join(', ')}`, {
      hint: LAYOUT_HINT,
    });
  }
  let config: unknown;
  try {
    config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
  } catch (cause) {
    throw modelInvalid(`Expected JSON in ${join(dir, 'config.json')} but it does not parse`, {
      hint: LAYOUT_HINT,
      cause,
    });
  }
  const modelType = (config as { model_type?: unknown } | null)?.model_type;
  if (modelType !== 'clip') {
    throw modelInvalid(
      `Expected model_type "clip" in ${join(dir, 'config.json')} but received ${JSON.stringify(modelType)}`,
      {
        hint: LAYOUT_HINT,
      },
    );
  }
  return config as Record<string, unknown>;
}

function configuredDim(config: Record<string, unknown>): number | undefined {
  const candidates = [
    config.projection_dim,
    (config.text_config as Record<string, unknown> | undefined)?.projection_dim,
  ];
  return candidates.find((d): d is number => typeof d === 'number' && Number.isInteger(d) && d > 0);
}

/** Splits `items` into runs of at most `size`. */
function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Rows of a [n, dim] tensor as separate, L2-normalised (in float64) vectors. */
function normalisedRows(t: Tensor, expectedRows: number, output: string): Float32Array[] {
  const dims = t.dims;
  const data = t.data;
  if (dims.length !== 2 || dims[0] !== expectedRows || !(data instanceof Float32Array)) {
    throw modelInvalid(
      `Expected ${output} of shape [${expectedRows}, dim] float32 but received [${dims.join(', ')}] ${t.type}`,
    );
  }
  const dim = dims[1]!;
  const rows: Float32Array[] = [];
  for (let r = 0; r < expectedRows; r++) {
    const row = data.slice(r * dim, (r + 1) * dim);
    let sq = 0;
    for (const x of row) sq += x * x;
    const norm = Math.sqrt(sq);
    if (norm > 0) for (let i = 0; i < dim; i++) row[i] = row[i]! / norm;
    rows.push(row);
  }
  return rows;
}

/**
 * Sides above this are shrunk (shortest side to it) while decoding: CLIP's processor resizes to ~224 px anyway, and
 * raw pixels of a 10 000 × 10 000 photo would hold 300 MB per image. Smaller images are decoded as they are.
 */
const DECODE_SIDE = 1024;

/** Decodes encoded image bytes into an RGB RawImage with sharp; a bad image names its index. */
async function decodeImage(
  RawImage: typeof import('@huggingface/transformers').RawImage,
  bytes: Buffer,
  index: number,
): Promise<InstanceType<typeof import('@huggingface/transformers').RawImage>> {
  try {
    const { data, info } = await sharp(bytes)
      .resize({ width: DECODE_SIDE, height: DECODE_SIDE, fit: 'outside', withoutEnlargement: true })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return new RawImage(new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), info.width, info.height, 3);
  } catch (cause) {
    throw inputMalformed(
      `Expected an encoded image for images[${index}] but it does not decode: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
}

/** Checks an ONNX session's input and output names, so a non-CLIP export fails at load, not at first use. */
function checkSignature(model: PreTrainedModel, tower: string, source: string, inputs: string[], output: string): void {
  const session = (model as unknown as { sessions: Record<string, { inputNames: string[]; outputNames: string[] }> })
    .sessions.model;
  if (session === undefined) return; // not an ONNX-session model: nothing to check
  const missingInputs = inputs.filter((i) => !session.inputNames.includes(i));
  if (missingInputs.length > 0 || !session.outputNames.includes(output)) {
    throw modelInvalid(
      `Expected the ${tower} model of ${source} to take ${inputs.join(', ')} and give ${output} but it takes ` +
        `${session.inputNames.join(', ')} and gives ${session.outputNames.join(', ')}`,
      { hint: LAYOUT_HINT },
    );
  }
}

/** Where the model is read from: a checked local folder (and its config), or a hub id when that is allowed. */
async function locateModel(
  modelDirOrHubId: string,
  dtype: ClipDtype,
  allowRemote: boolean,
): Promise<{ source: string; localFilesOnly: boolean; config?: Record<string, unknown> }> {
  const localDir = resolve(modelDirOrHubId);
  // An absolute path: transformers.js reads it as a folder, never as a hub id or under env.localModelPath.
  if (await isDirectory(localDir))
    return { source: localDir, localFilesOnly: true, config: await checkModelDir(localDir, dtype) };
  if (allowRemote) return { source: modelDirOrHubId, localFilesOnly: false };
  throw modelInvalid(`Expected a CLIP model folder at ${localDir} but there is no such folder`, {
    hint: `${LAYOUT_HINT} Loading "${modelDirOrHubId}" from the Hugging Face hub needs allowRemote.`,
  });
}

/** The tokenizer, image processor and both towers; if one fails, the sessions that loaded are released first. */
async function loadParts(
  source: string,
  localFilesOnly: boolean,
  dtype: ClipDtype,
  cacheDir: string | undefined,
): Promise<[PreTrainedTokenizer, ImageProcessor, PreTrainedModel, PreTrainedModel]> {
  const { AutoTokenizer, AutoImageProcessor, CLIPTextModelWithProjection, CLIPVisionModelWithProjection } =
    await import('@huggingface/transformers');
  const common = { local_files_only: localFilesOnly, ...(cacheDir === undefined ? {} : { cache_dir: cacheDir }) };
  const modelOptions = { ...common, dtype, device: 'cpu' as const };
  const loaded = await Promise.allSettled([
    AutoTokenizer.from_pretrained(source, common),
    AutoImageProcessor.from_pretrained(source, common),
    CLIPTextModelWithProjection.from_pretrained(source, modelOptions),
    CLIPVisionModelWithProjection.from_pretrained(source, modelOptions),
  ] as const);
  const failed = loaded.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed === undefined) {
    return loaded.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [
      PreTrainedTokenizer,
      ImageProcessor,
      PreTrainedModel,
      PreTrainedModel,
    ];
  }
  const sessions = loaded.slice(2).flatMap((r) => (r.status === 'fulfilled' ? [r.value as PreTrainedModel] : []));
  await Promise.all(sessions.map((m) => m.dispose().catch(() => undefined)));
  const cause: unknown = failed.reason;
  if (cause instanceof ClipstreamError) throw cause;
  throw modelInvalid(`Expected a loadable CLIP model at ${source} but loading failed: ${(cause as Error).message}`, {
    hint: LAYOUT_HINT,
    cause,
  });
}

/**
 * Loads a CLIP model from a local folder (or, with `allowRemote`, a hub id such as `Xenova/clip-vit-base-patch32`).
 */
export async function loadClipModel(modelDirOrHubId: string, opts: LoadClipOptions = {}): Promise<ClipModel> {
  const dtype = opts.dtype ?? 'fp32';
  const batchSize = opts.batchSize ?? 32;
  if (!(dtype in DTYPE_SUFFIX))
    throw invalidOption(`Expected one of fp32, fp16, q8 for dtype but received ${String(dtype)}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw invalidOption(`Expected a positive integer for batchSize but received ${batchSize}`);
  }

  const {
    source,
    localFilesOnly,
    config: checkedConfig,
  } = await locateModel(modelDirOrHubId, dtype, opts.allowRemote ?? false);
  let config = checkedConfig;

  const { RawImage } = await import('@huggingface/transformers');
  const [tokenizer, processor, textModel, visionModel] = await loadParts(source, localFilesOnly, dtype, opts.cacheDir);
  config ??= textModel.config as unknown as Record<string, unknown>;

  let closed = false;
  const ensureOpen = () => {
    if (closed) throw internalError(`Expected an open CLIP model but ${source} was closed`);
  };

  const runText = async (batch: string[]): Promise<Float32Array[]> => {
    const inputs = tokenizer(batch, { padding: true, truncation: true });
    const out = (await textModel(inputs)) as Record<string, Tensor>;
    const embeds = out.text_embeds;
    if (embeds === undefined)
      throw modelInvalid(`Expected output text_embeds from ${source} text model`, { hint: LAYOUT_HINT });
    return normalisedRows(embeds, batch.length, 'text_embeds');
  };

  /** Embeds the images that decode; one that does not is null, or rejects the batch when `strict`. */
  const runImages = async (batch: Buffer[], offset: number, strict: boolean): Promise<(Float32Array | null)[]> => {
    const decoded = await Promise.allSettled(batch.map((b, i) => decodeImage(RawImage, b, offset + i)));
    const failed = decoded.find((d) => d.status === 'rejected');
    if (strict && failed) throw failed.reason;
    const images = decoded.flatMap((d) => (d.status === 'fulfilled' ? [d.value] : []));
    if (images.length === 0) return batch.map(() => null);
    const { pixel_values } = (await processor(images)) as { pixel_values: Tensor };
    const out = (await visionModel({ pixel_values })) as Record<string, Tensor>;
    const embeds = out.image_embeds;
    if (embeds === undefined)
      throw modelInvalid(`Expected output image_embeds from ${source} vision model`, { hint: LAYOUT_HINT });
    const rows = normalisedRows(embeds, images.length, 'image_embeds');
    let next = 0;
    return decoded.map((d) => (d.status === 'fulfilled' ? rows[next++]! : null));
  };
  const encodeImages = async (images: Buffer[], strict: boolean): Promise<(Float32Array | null)[]> => {
    ensureOpen();
    const out: (Float32Array | null)[] = [];
    for (const [k, batch] of chunks(images, batchSize).entries())
      out.push(...(await runImages(batch, k * batchSize, strict)));
    return out;
  };

  let dim: number;
  try {
    checkSignature(textModel, 'text', source, ['input_ids'], 'text_embeds');
    checkSignature(visionModel, 'vision', source, ['pixel_values'], 'image_embeds');
    // The dim users rely on is the one the model really produces: probe once and check it against the config.
    const [probe] = await runText(['']);
    dim = probe!.length;
    const configured = configuredDim(config);
    if (configured !== undefined && configured !== dim) {
      throw modelInvalid(
        `Expected text_embeds of size ${configured} (projection_dim in config.json) from ${source} but received ${dim}`,
        {
          hint: LAYOUT_HINT,
        },
      );
    }
  } catch (err) {
    await Promise.all([textModel.dispose(), visionModel.dispose()]).catch(() => undefined);
    throw err;
  }

  return {
    dim,
    name:
      typeof config._name_or_path === 'string' && config._name_or_path !== '' ? config._name_or_path : basename(source),
    async encodeText(texts) {
      ensureOpen();
      const out: Float32Array[] = [];
      for (const batch of chunks(texts, batchSize)) out.push(...(await runText(batch)));
      return out;
    },
    encodeImages: (images) => encodeImages(images, true) as Promise<Float32Array[]>,
    tryEncodeImages: (images) => encodeImages(images, false),
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([textModel.dispose(), visionModel.dispose()]);
    },
  };
}
