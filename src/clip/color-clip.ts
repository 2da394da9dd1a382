/**
 * color-CLIP: a tiny CLIP-format model generated from code, so tests and the demo run a real
 * CLIP code path (transformers.js + onnxruntime-node) without downloading weights.
 *
 * The folder has the layout of a Xenova/clip-* export: config.json, preprocessor_config.json, tokenizer.json,
 * tokenizer_config.json, onnx/text_model.onnx (input_ids, attention_mask → text_embeds) and
 * onnx/vision_model.onnx (pixel_values → image_embeds).
 *
 * Semantics — one shared map from a colour to a vector:
 *   embed(rgb) = P·(rgb − 0.5) + g·u
 * where the rows of P (3 × dim) and u are orthonormal, and g is a small constant "grey" component so that mid-grey
 * (rgb − 0.5 = 0) still has a direction instead of being the zero vector.
 * - An image's embedding is embed(mean colour of the preprocessed crop), L2-normalised.
 * - A colour word's token embedding is embed(its colour); other words get short vectors orthogonal to every colour
 *   direction, so "a photo of a red car" ≈ "red". The text embedding is the L2-normalised masked mean.
 * So a pure-red image and the word "red" have cosine ≈ 1, red vs blue ≈ −0.23, and thresholds mean something.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidOption } from '../core/errors.js';
import { encodeOnnxModel, type OnnxModel, type OnnxNode, type OnnxTensor } from './onnx-proto.js';

export interface ColorClipOptions {
  /** Embedding size; at least 8. Default 64. */
  dim?: number;
  /** Side of the square crop the image processor produces. Default 32 (real CLIP: 224) — small is fast. */
  imageSize?: number;
}

export type Rgb = readonly [number, number, number];

/** Colour words and their sRGB values in [0, 1] (CSS colours where there is one). */
export const COLOR_WORDS: Readonly<Record<string, Rgb>> = {
  red: [1, 0, 0],
  green: [0, 1, 0],
  lime: [0, 1, 0],
  blue: [0, 0, 1],
  yellow: [1, 1, 0],
  cyan: [0, 1, 1],
  aqua: [0, 1, 1],
  turquoise: [0.25, 0.88, 0.82],
  magenta: [1, 0, 1],
  fuchsia: [1, 0, 1],
  purple: [0.5, 0, 0.5],
  violet: [0.93, 0.51, 0.93],
  orange: [1, 0.65, 0],
  white: [1, 1, 1],
  black: [0, 0, 0],
  gray: [0.5, 0.5, 0.5],
  grey: [0.5, 0.5, 0.5],
  silver: [0.75, 0.75, 0.75],
  pink: [1, 0.75, 0.8],
  brown: [0.65, 0.16, 0.16],
  maroon: [0.5, 0, 0],
  navy: [0, 0, 0.5],
  teal: [0, 0.5, 0.5],
  olive: [0.5, 0.5, 0],
  gold: [1, 0.84, 0],
  beige: [0.96, 0.96, 0.86],
};

/** Words that carry no colour: they tokenise to known ids whose embeddings are short and colour-free. */
const PLAIN_WORDS = (
  'a an the this that of in on at with and or to is are for from by it its my our your ' +
  'photo photograph picture image painting drawing illustration render close up view background ' +
  'thing object car dog cat house flower sky sea water apple shirt dress ball bird tree wall door ' +
  'light dark bright pale deep solid plain colored coloured color colour ' +
  ". , ! ? - '"
).split(' ');

export const SPECIAL_TOKENS = { bos: '<|startoftext|>', eos: '<|endoftext|>', unk: '<|unk|>' } as const;

const GREY_COMPONENT = 0.25; // g: length of the shared "grey" component
const PLAIN_WORD_LENGTH = 0.04; // length of a non-colour word's embedding
const EPS = 1e-12;
const OPSET = 17;
const IR_VERSION = 8; // the IR version of opset 17
/** OpenAI CLIP's normalisation, as in every CLIP preprocessor_config.json. */
const IMAGE_MEAN: Rgb = [0.48145466, 0.4578275, 0.40821073];
const IMAGE_STD: Rgb = [0.26862954, 0.26130258, 0.27577711];

/** The vocabulary: specials first, then colour words, then plain words. Index = token id. */
export function colorClipVocabulary(): string[] {
  return [
    ...new Set([
      SPECIAL_TOKENS.bos,
      SPECIAL_TOKENS.eos,
      SPECIAL_TOKENS.unk,
      ...Object.keys(COLOR_WORDS),
      ...PLAIN_WORDS,
    ]),
  ];
}

/** Seeded PRNG (mulberry32) so that every generated model is identical. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussianVector(dim: number, rand: () => number): Float64Array {
  const v = new Float64Array(dim);
  for (let i = 0; i < dim; i++) v[i] = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return v;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/** Removes the components along orthonormal `basis` vectors, then scales to `length`. */
function orthogonalise(v: Float64Array, basis: readonly Float64Array[], length: number): Float64Array {
  for (const b of basis) {
    const d = dot(v, b);
    for (let i = 0; i < v.length; i++) v[i]! -= d * b[i]!;
  }
  const n = Math.sqrt(dot(v, v));
  for (let i = 0; i < v.length; i++) v[i]! *= length / n;
  return v;
}

/** The fixed geometry of a color-CLIP of size `dim`: colour projection rows P (3) and the grey direction u. */
export function colorClipBasis(dim: number): { projection: readonly Float64Array[]; grey: Float64Array } {
  const rand = prng(0xc011);
  const basis: Float64Array[] = [];
  for (let k = 0; k < 4; k++) basis.push(orthogonalise(gaussianVector(dim, rand), basis, 1));
  return { projection: basis.slice(0, 3), grey: basis[3]! };
}

/** embed(rgb) = P·(rgb − 0.5) + g·u, not normalised: the vector a colour word and a flat image of that colour share. */
export function colorVector(rgb: Rgb, dim = 64): Float64Array {
  const { projection, grey } = colorClipBasis(dim);
  const out = new Float64Array(dim);
  for (let i = 0; i < dim; i++) {
    out[i] = GREY_COMPONENT * grey[i]!;
    for (let c = 0; c < 3; c++) out[i]! += (rgb[c]! - 0.5) * projection[c]![i]!;
  }
  return out;
}

function tokenEmbeddings(vocab: readonly string[], dim: number): Float32Array {
  const { projection, grey } = colorClipBasis(dim);
  const colourSpace = [...projection, grey];
  const rand = prng(0x70c3);
  const table = new Float32Array(vocab.length * dim);
  vocab.forEach((word, id) => {
    const rgb = COLOR_WORDS[word];
    let v: Float64Array;
    if (rgb !== undefined) v = colorVector(rgb, dim);
    else if (word === SPECIAL_TOKENS.unk)
      v = new Float64Array(dim); // an unknown word says nothing
    else v = orthogonalise(gaussianVector(dim, rand), colourSpace, PLAIN_WORD_LENGTH);
    table.set(v, id * dim);
  });
  return table;
}

const f32 = (name: string, dims: number[], values: ArrayLike<number>): OnnxTensor => ({
  name,
  dataType: 'FLOAT',
  dims,
  data: Float32Array.from(values),
});
const i64 = (name: string, values: number[]): OnnxTensor => ({
  name,
  dataType: 'INT64',
  dims: [values.length],
  data: BigInt64Array.from(values.map(BigInt)),
});

/** Nodes that L2-normalise `input` along axis 1 into `output`. */
function l2NormaliseNodes(input: string, output: string): OnnxNode[] {
  return [
    {
      opType: 'ReduceL2',
      inputs: [input],
      outputs: [`${input}_norm`],
      attributes: { axes: { ints: [1] }, keepdims: { int: 1 } },
    },
    { opType: 'Max', inputs: [`${input}_norm`, 'eps'], outputs: [`${input}_norm_safe`] },
    { opType: 'Div', inputs: [input, `${input}_norm_safe`], outputs: [output] },
  ];
}

function textModel(vocab: readonly string[], dim: number): OnnxModel {
  const nodes: OnnxNode[] = [
    {
      opType: 'Gather',
      inputs: ['token_embedding', 'input_ids'],
      outputs: ['embeds'],
      attributes: { axis: { int: 0 } },
    },
    { opType: 'Cast', inputs: ['attention_mask'], outputs: ['mask'], attributes: { to: { int: 1 } } },
    { opType: 'Unsqueeze', inputs: ['mask', 'axis_2'], outputs: ['mask3'] },
    { opType: 'Mul', inputs: ['embeds', 'mask3'], outputs: ['masked'] },
    { opType: 'ReduceSum', inputs: ['masked', 'axis_1'], outputs: ['summed'], attributes: { keepdims: { int: 0 } } },
    { opType: 'ReduceSum', inputs: ['mask3', 'axis_1'], outputs: ['count'], attributes: { keepdims: { int: 0 } } },
    { opType: 'Max', inputs: ['count', 'one'], outputs: ['count_safe'] },
    { opType: 'Div', inputs: ['summed', 'count_safe'], outputs: ['pooled'] },
    ...l2NormaliseNodes('pooled', 'text_embeds'),
  ];
  return {
    irVersion: IR_VERSION,
    opsetVersion: OPSET,
    producerName: 'clipstream color-CLIP',
    docString:
      'Text tower of color-CLIP: L2-normalised masked mean of token embeddings; colour words point at colours.',
    graph: {
      name: 'color_clip_text',
      nodes: nodes.map((n, i) => ({ ...n, name: `${n.opType}_${i}` })),
      initializers: [
        f32('token_embedding', [vocab.length, dim], tokenEmbeddings(vocab, dim)),
        i64('axis_1', [1]),
        i64('axis_2', [2]),
        f32('one', [], [1]),
        f32('eps', [], [EPS]),
      ],
      inputs: [
        { name: 'input_ids', elemType: 'INT64', shape: ['batch_size', 'sequence_length'] },
        { name: 'attention_mask', elemType: 'INT64', shape: ['batch_size', 'sequence_length'] },
      ],
      outputs: [{ name: 'text_embeds', elemType: 'FLOAT', shape: ['batch_size', dim] }],
    },
  };
}

function visionModel(dim: number): OnnxModel {
  const { projection, grey } = colorClipBasis(dim);
  const projectionMatrix = new Float32Array(3 * dim); // [3, dim]: row c is P's colour direction c
  projection.forEach((row, c) => projectionMatrix.set(row, c * dim));
  const nodes: OnnxNode[] = [
    // Mean over H and W of the normalised pixels, then undo the preprocessor's (x − mean) / std and centre on grey.
    {
      opType: 'ReduceMean',
      inputs: ['pixel_values'],
      outputs: ['mean_pixel'],
      attributes: { axes: { ints: [2, 3] }, keepdims: { int: 0 } },
    },
    { opType: 'Mul', inputs: ['mean_pixel', 'image_std'], outputs: ['mean_scaled'] },
    { opType: 'Add', inputs: ['mean_scaled', 'image_mean_minus_centre'], outputs: ['mean_rgb_centred'] },
    { opType: 'MatMul', inputs: ['mean_rgb_centred', 'colour_projection'], outputs: ['projected'] },
    { opType: 'Add', inputs: ['projected', 'grey_component'], outputs: ['pooled'] },
    ...l2NormaliseNodes('pooled', 'image_embeds'),
  ];
  return {
    irVersion: IR_VERSION,
    opsetVersion: OPSET,
    producerName: 'clipstream color-CLIP',
    docString: 'Vision tower of color-CLIP: L2-normalised projection of the mean colour of the image.',
    graph: {
      name: 'color_clip_vision',
      nodes: nodes.map((n, i) => ({ ...n, name: `${n.opType}_${i}` })),
      initializers: [
        f32('image_std', [3], IMAGE_STD),
        f32(
          'image_mean_minus_centre',
          [3],
          IMAGE_MEAN.map((m) => m - 0.5),
        ),
        f32('colour_projection', [3, dim], projectionMatrix),
        f32(
          'grey_component',
          [dim],
          Array.from(grey, (x) => GREY_COMPONENT * x),
        ),
        f32('eps', [], [EPS]),
      ],
      inputs: [{ name: 'pixel_values', elemType: 'FLOAT', shape: ['batch_size', 3, 'height', 'width'] }],
      outputs: [{ name: 'image_embeds', elemType: 'FLOAT', shape: ['batch_size', dim] }],
    },
  };
}

function tokenizerJson(vocab: readonly string[]): object {
  const { bos, eos, unk } = SPECIAL_TOKENS;
  const id = (t: string) => vocab.indexOf(t);
  const special = (t: string) => ({
    id: id(t),
    content: t,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(bos), special(eos), special(unk)],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Lowercase' }] },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: eos, type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 0 } },
        { SpecialToken: { id: eos, type_id: 0 } },
      ],
      special_tokens: {
        [bos]: { id: bos, ids: [id(bos)], tokens: [bos] },
        [eos]: { id: eos, ids: [id(eos)], tokens: [eos] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    // Whole words only: there are no "##" pieces, so an unknown word becomes <|unk|> as a whole.
    model: {
      type: 'WordPiece',
      unk_token: unk,
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab.map((t, i) => [t, i])),
    },
  };
}

function tokenizerConfigJson(vocab: readonly string[]): object {
  const { bos, eos, unk } = SPECIAL_TOKENS;
  return {
    tokenizer_class: 'CLIPTokenizer',
    bos_token: bos,
    eos_token: eos,
    pad_token: eos, // as OpenAI CLIP: pad with <|endoftext|>
    unk_token: unk,
    model_max_length: 77,
    do_lower_case: true,
    clean_up_tokenization_spaces: true,
    added_tokens_decoder: Object.fromEntries(
      [bos, eos, unk].map((t) => [
        String(vocab.indexOf(t)),
        { content: t, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
      ]),
    ),
  };
}

function configJson(vocab: readonly string[], dim: number, imageSize: number): object {
  const eosId = vocab.indexOf(SPECIAL_TOKENS.eos);
  return {
    _name_or_path: 'color-CLIP',
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: dim,
    logit_scale_init_value: 2.6592,
    text_config: {
      model_type: 'clip_text_model',
      vocab_size: vocab.length,
      hidden_size: dim,
      projection_dim: dim,
      max_position_embeddings: 77,
      num_hidden_layers: 0,
      bos_token_id: vocab.indexOf(SPECIAL_TOKENS.bos),
      eos_token_id: eosId,
      pad_token_id: eosId,
    },
    vision_config: {
      model_type: 'clip_vision_model',
      hidden_size: dim,
      projection_dim: dim,
      image_size: imageSize,
      patch_size: imageSize,
      num_channels: 3,
      num_hidden_layers: 0,
    },
    color_clip: {
      description: 'Generated by clipstream (src/clip/color-clip.ts): colour words and images map to their colour.',
      grey_component: GREY_COMPONENT,
      colors: COLOR_WORDS,
    },
  };
}

function preprocessorConfigJson(imageSize: number): object {
  return {
    image_processor_type: 'CLIPImageProcessor',
    feature_extractor_type: 'CLIPFeatureExtractor',
    do_resize: true,
    size: { shortest_edge: imageSize },
    resample: 3,
    do_center_crop: true,
    crop_size: { height: imageSize, width: imageSize },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: IMAGE_MEAN,
    image_std: IMAGE_STD,
    do_convert_rgb: true,
  };
}

/** The files of a color-CLIP model folder, path relative to the folder → contents. */
export function colorClipFiles(opts: ColorClipOptions = {}): Map<string, Uint8Array | string> {
  const dim = opts.dim ?? 64;
  const imageSize = opts.imageSize ?? 32;
  if (!Number.isInteger(dim) || dim < 8) throw invalidOption(`Expected an integer >= 8 for dim but received ${dim}`);
  if (!Number.isInteger(imageSize) || imageSize < 1) {
    throw invalidOption(`Expected a positive integer for imageSize but received ${imageSize}`);
  }
  const vocab = colorClipVocabulary();
  const json = (o: object) => `${JSON.stringify(o, null, 2)}\n`;
  return new Map<string, Uint8Array | string>([
    ['config.json', json(configJson(vocab, dim, imageSize))],
    ['preprocessor_config.json', json(preprocessorConfigJson(imageSize))],
    ['tokenizer.json', json(tokenizerJson(vocab))],
    ['tokenizer_config.json', json(tokenizerConfigJson(vocab))],
    ['onnx/text_model.onnx', encodeOnnxModel(textModel(vocab, dim))],
    ['onnx/vision_model.onnx', encodeOnnxModel(visionModel(dim))],
  ]);
}

/** Writes a color-CLIP model folder to `dir` (created if needed) and returns `dir`. */
export async function writeColorClip(dir: string, opts: ColorClipOptions = {}): Promise<string> {
  const files = colorClipFiles(opts);
  await mkdir(join(dir, 'onnx'), { recursive: true });
  await Promise.all([...files].map(([path, contents]) => writeFile(join(dir, path), contents)));
  return dir;
}
