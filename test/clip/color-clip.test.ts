import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import {
  colorClipFiles,
  colorClipVocabulary,
  colorVector,
  COLOR_WORDS,
  writeColorClip,
} from '../../src/clip/color-clip.js';
import { tempDir } from '../helpers/tmp.js';

// The subset of onnx/onnx.proto (official field numbers) needed to read our models back.
const ONNX_PROTO = `
syntax = "proto2";
package onnx;
message AttributeProto { optional string name = 1; optional int32 type = 20; optional float f = 2; optional int64 i = 3;
  optional bytes s = 4; repeated int64 ints = 8; }
message ValueInfoProto { optional string name = 1; optional TypeProto type = 2; }
message NodeProto { repeated string input = 1; repeated string output = 2; optional string name = 3;
  optional string op_type = 4; optional string domain = 7; repeated AttributeProto attribute = 5; }
message TensorProto { repeated int64 dims = 1; optional int32 data_type = 2; optional string name = 8; optional bytes raw_data = 9; }
message GraphProto { repeated NodeProto node = 1; optional string name = 2; repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11; repeated ValueInfoProto output = 12; }
message OperatorSetIdProto { optional string domain = 1; optional int64 version = 2; }
message ModelProto { optional int64 ir_version = 1; repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2; optional GraphProto graph = 7; }
message TensorShapeProto { message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } } repeated Dimension dim = 1; }
message TypeProto { message Tensor { optional int32 elem_type = 1; optional TensorShapeProto shape = 2; } oneof value { Tensor tensor_type = 1; } }
`;
const ModelProto = protobuf.parse(ONNX_PROTO).root.lookupType('onnx.ModelProto');

interface DecodedModel {
  irVersion: number;
  opsetImport: { domain?: string; version: number }[];
  graph: {
    node: { opType: string; domain?: string }[];
    initializer: { name: string; dims: number[] }[];
    input: DecodedValueInfo[];
    output: DecodedValueInfo[];
  };
}
interface DecodedValueInfo {
  name: string;
  type: { tensorType: { elemType: number; shape: { dim: { dimValue?: number; dimParam?: string }[] } } };
}

function decode(bytes: Uint8Array): DecodedModel {
  return ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, defaults: false }) as DecodedModel;
}

const shapeOf = (v: DecodedValueInfo) => v.type.tensorType.shape.dim.map((d) => d.dimValue ?? d.dimParam);
const BASIC_OPS = new Set([
  'Gather',
  'Cast',
  'Unsqueeze',
  'Mul',
  'Div',
  'Add',
  'Sub',
  'ReduceSum',
  'ReduceMean',
  'ReduceL2',
  'Max',
  'MatMul',
]);

function unit(v: ArrayLike<number>): number[] {
  const n = Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
  return Array.from(v, (x) => x / n);
}

describe('writeColorClip', () => {
  it('writes the files of a Xenova/clip-* export, small, in well under a second', async () => {
    const dir = await tempDir();
    const t0 = performance.now();
    await writeColorClip(dir);
    expect(performance.now() - t0).toBeLessThan(1000);
    for (const f of [
      'config.json',
      'preprocessor_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'onnx/text_model.onnx',
      'onnx/vision_model.onnx',
    ]) {
      const size = (await stat(join(dir, f))).size;
      expect(size, f).toBeGreaterThan(0);
      expect(size, f).toBeLessThan(64 * 1024);
    }
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    expect(config).toMatchObject({
      model_type: 'clip',
      projection_dim: 64,
      text_config: { projection_dim: 64 },
      vision_config: { projection_dim: 64 },
    });
    const pre = JSON.parse(await readFile(join(dir, 'preprocessor_config.json'), 'utf8'));
    expect(pre).toMatchObject({
      image_processor_type: 'CLIPImageProcessor',
      size: { shortest_edge: 32 },
      crop_size: { height: 32, width: 32 },
    });
    const tok = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8'));
    expect(tok.tokenizer_class).toBe('CLIPTokenizer');
  });

  it('is deterministic and honours dim', () => {
    const a = colorClipFiles();
    const b = colorClipFiles();
    for (const [path, contents] of a) expect(Buffer.from(b.get(path)!)).toEqual(Buffer.from(contents));
    const small = colorClipFiles({ dim: 16 });
    expect(JSON.parse(small.get('config.json') as string).projection_dim).toBe(16);
  });

  it('rejects a dim too small to hold the colour space', () => {
    expect(() => colorClipFiles({ dim: 3 })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', message: 'Expected an integer >= 8 for dim but received 3' }),
    );
  });

  it('uses only basic ONNX ops at opset 17, with the standard input and output signatures', () => {
    const files = colorClipFiles({ dim: 64 });
    const text = decode(files.get('onnx/text_model.onnx') as Uint8Array);
    const vision = decode(files.get('onnx/vision_model.onnx') as Uint8Array);
    for (const m of [text, vision]) {
      expect(m.irVersion).toBe(8);
      expect(m.opsetImport).toEqual([{ domain: '', version: 17 }]);
      for (const n of m.graph.node) expect(BASIC_OPS.has(n.opType), n.opType).toBe(true);
    }
    expect(text.graph.input.map((v) => [v.name, v.type.tensorType.elemType, shapeOf(v)])).toEqual([
      ['input_ids', 7, ['batch_size', 'sequence_length']],
      ['attention_mask', 7, ['batch_size', 'sequence_length']],
    ]);
    expect(text.graph.output.map((v) => [v.name, v.type.tensorType.elemType, shapeOf(v)])).toEqual([
      ['text_embeds', 1, ['batch_size', 64]],
    ]);
    expect(vision.graph.input.map((v) => [v.name, v.type.tensorType.elemType, shapeOf(v)])).toEqual([
      ['pixel_values', 1, ['batch_size', 3, 'height', 'width']],
    ]);
    expect(vision.graph.output.map((v) => [v.name, v.type.tensorType.elemType, shapeOf(v)])).toEqual([
      ['image_embeds', 1, ['batch_size', 64]],
    ]);
    expect(text.graph.initializer.find((t) => t.name === 'token_embedding')?.dims).toEqual([
      colorClipVocabulary().length,
      64,
    ]);
  });

  describe('run directly in onnxruntime-node', () => {
    it('has the standard input and output names', async () => {
      const dir = await tempDir();
      await writeColorClip(dir);
      const text = await ort.InferenceSession.create(join(dir, 'onnx/text_model.onnx'));
      const vision = await ort.InferenceSession.create(join(dir, 'onnx/vision_model.onnx'));
      expect(text.inputNames).toEqual(['input_ids', 'attention_mask']);
      expect(text.outputNames).toEqual(['text_embeds']);
      expect(vision.inputNames).toEqual(['pixel_values']);
      expect(vision.outputNames).toEqual(['image_embeds']);
      await text.release();
      await vision.release();
    });

    it('text: masked mean of token vectors, normalised; a colour word is its colour vector', async () => {
      const files = colorClipFiles({ dim: 16 });
      const session = await ort.InferenceSession.create(files.get('onnx/text_model.onnx') as Uint8Array);
      const vocab = colorClipVocabulary();
      const id = (w: string) => BigInt(vocab.indexOf(w));
      // Row 0: just "red". Row 1: "red" plus a padded position holding "blue", masked out.
      const ids = new ort.Tensor('int64', BigInt64Array.from([id('red'), id('red'), id('red'), id('blue')]), [2, 2]);
      const mask = new ort.Tensor('int64', BigInt64Array.from([1n, 1n, 1n, 0n]), [2, 2]);
      const out = await session.run({ input_ids: ids, attention_mask: mask });
      const embeds = out.text_embeds!;
      expect(embeds.dims).toEqual([2, 16]);
      const data = embeds.data as Float32Array;
      const red = unit(colorVector(COLOR_WORDS.red!, 16));
      for (const row of [0, 1]) {
        Array.from(data.subarray(row * 16, row * 16 + 16)).forEach((x, i) => expect(x).toBeCloseTo(red[i]!, 5));
      }
      await session.release();
    });

    it('vision: the normalised colour vector of the mean colour, undoing CLIP normalisation', async () => {
      const files = colorClipFiles({ dim: 16 });
      const pre = JSON.parse(files.get('preprocessor_config.json') as string) as {
        image_mean: number[];
        image_std: number[];
      };
      const session = await ort.InferenceSession.create(files.get('onnx/vision_model.onnx') as Uint8Array);
      // A 2×2 image, half orange (1, 0.5, 0) and half (0.6, 0.1, 0.2): mean (0.8, 0.3, 0.1).
      const pixels = [
        [1, 0.5, 0],
        [0.6, 0.1, 0.2],
      ];
      const data = new Float32Array(3 * 4);
      for (let c = 0; c < 3; c++) {
        for (let p = 0; p < 4; p++) data[c * 4 + p] = (pixels[p % 2]![c]! - pre.image_mean[c]!) / pre.image_std[c]!;
      }
      const out = await session.run({ pixel_values: new ort.Tensor('float32', data, [1, 3, 2, 2]) });
      const expected = unit(colorVector([0.8, 0.3, 0.1], 16));
      Array.from(out.image_embeds!.data as Float32Array).forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 5));
      await session.release();
    });
  });
});
