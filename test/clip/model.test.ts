import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeColorClip } from '../../src/clip/color-clip.js';
import { loadClipModel } from '../../src/clip/model.js';
import { tempDir } from '../helpers/tmp.js';
import { cosine, noisyImage, norm, sharedColorClip, solidImage, type Rgb255 } from './helpers.js';

const COLOURS: Record<string, Rgb255> = {
  red: [255, 0, 0],
  green: [0, 255, 0],
  blue: [0, 0, 255],
  yellow: [255, 255, 0],
  cyan: [0, 255, 255],
  magenta: [255, 0, 255],
};

describe('loadClipModel on color-CLIP', () => {
  const shared = sharedColorClip();

  it('reports dim and name and returns one unit vector per input', async () => {
    const model = shared.model();
    expect(model.dim).toBe(64);
    expect(model.name).toBe('color-CLIP');
    const texts = await model.encodeText(['red', 'a photo of a red thing', 'blue', 'no colour here']);
    const images = await model.encodeImages([
      await solidImage([255, 0, 0], 'jpeg'),
      await solidImage([0, 0, 255], 'png'),
    ]);
    expect(texts).toHaveLength(4);
    expect(images).toHaveLength(2);
    for (const v of [...texts, ...images]) {
      expect(v).toBeInstanceOf(Float32Array);
      expect(v.length).toBe(64);
      expect(norm(v)).toBeCloseTo(1, 5);
    }
    expect(await model.encodeText([])).toEqual([]);
    expect(await model.encodeImages([])).toEqual([]);
  });

  it('matches colour words to images of that colour, and thresholds separate the rest', async () => {
    const model = shared.model();
    const [red, redPhrase, blue, plain] = await model.encodeText([
      'red',
      'a photo of a red thing',
      'blue',
      'a photo of a car',
    ]);
    const [redJpeg, bluePng, noisyRed, redWebp] = await model.encodeImages([
      await solidImage([255, 0, 0], 'jpeg', 64, 48),
      await solidImage([0, 0, 255], 'png'),
      await noisyImage([230, 20, 20]),
      await solidImage([255, 0, 0], 'webp', 20, 90),
    ]);
    expect(cosine(red!, redJpeg!)).toBeGreaterThan(0.9);
    expect(cosine(red!, redWebp!)).toBeGreaterThan(0.9);
    expect(cosine(redPhrase!, redJpeg!)).toBeGreaterThan(0.9);
    expect(cosine(red!, noisyRed!)).toBeGreaterThan(0.9);
    expect(cosine(red!, redPhrase!)).toBeGreaterThan(0.95);
    expect(cosine(red!, bluePng!)).toBeLessThan(0.2);
    expect(cosine(red!, blue!)).toBeLessThan(0);
    expect(cosine(blue!, bluePng!)).toBeGreaterThan(0.9);
    expect(Math.abs(cosine(plain!, redJpeg!))).toBeLessThan(0.05); // no colour word: unrelated to every colour
  });

  it('ranks six colour images right for every colour word', async () => {
    const model = shared.model();
    const names = Object.keys(COLOURS);
    const images = await model.encodeImages(
      await Promise.all(names.map((n, i) => solidImage(COLOURS[n]!, i % 2 ? 'png' : 'jpeg'))),
    );
    const texts = await model.encodeText(names.map((n) => `a photo of a ${n} thing`));
    names.forEach((name, t) => {
      const ranked = names.map((n, i) => ({ n, s: cosine(texts[t]!, images[i]!) })).sort((a, b) => b.s - a.s);
      expect(ranked[0]!.n, name).toBe(name);
      expect(ranked[0]!.s - ranked[1]!.s, name).toBeGreaterThan(0.2);
    });
  });

  it('lowercases and splits punctuation like CLIP; grey has a direction of its own', async () => {
    const model = shared.model();
    const [upper, lower, grey, gray] = await model.encodeText(['RED!', 'red', 'grey', 'a gray wall']);
    expect(cosine(upper!, lower!)).toBeGreaterThan(0.99);
    const [greyImage, redImage] = await model.encodeImages([
      await solidImage([128, 128, 128]),
      await solidImage([255, 0, 0]),
    ]);
    expect(cosine(grey!, greyImage!)).toBeGreaterThan(0.95);
    expect(cosine(gray!, greyImage!)).toBeGreaterThan(0.9);
    expect(cosine(grey!, redImage!)).toBeLessThan(0.5);
  });

  it('gives the same embeddings whatever the batch size, in input order', async () => {
    const texts = ['red', 'blue', 'a green car', 'yellow', 'the sky', 'pink'];
    const images = await Promise.all(Object.values(COLOURS).map((c) => solidImage(c)));
    const small = await loadClipModel(shared.dir(), { batchSize: 2 });
    try {
      const [a, b] = [await small.encodeText(texts), await shared.model().encodeText(texts)];
      a.forEach((v, i) => expect(cosine(v, b[i]!)).toBeCloseTo(1, 5));
      const [c, d] = [await small.encodeImages(images), await shared.model().encodeImages(images)];
      c.forEach((v, i) => expect(cosine(v, d[i]!)).toBeCloseTo(1, 5));
    } finally {
      await small.close();
    }
  });

  it('accepts greyscale, alpha and 16-bit images; names the image that does not decode', async () => {
    const model = shared.model();
    const sharp = (await import('sharp')).default;
    const grey = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 90, g: 90, b: 90 } } })
      .greyscale()
      .jpeg()
      .toBuffer();
    const rgba = await sharp({
      create: { width: 8, height: 8, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0.5 } },
    })
      .webp()
      .toBuffer();
    const deep = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 0, g: 0, b: 255 } } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    const [red, blue] = await model.encodeText(['red', 'blue']);
    const [, rgbaEmb, deepEmb] = await model.encodeImages([grey, rgba, deep]);
    expect(cosine(red!, rgbaEmb!)).toBeGreaterThan(0.9);
    expect(cosine(blue!, deepEmb!)).toBeGreaterThan(0.9);
    await expect(model.encodeImages([grey, Buffer.from('<html>not an image</html>')])).rejects.toMatchObject({
      code: 'INPUT_MALFORMED',
      message: expect.stringMatching(/^Expected an encoded image for images\[1\] but it does not decode/),
    });
    // tryEncodeImages: null in its place, the others embedded as alone.
    const tried = await model.tryEncodeImages([rgba, Buffer.from('<html>not an image</html>'), deep]);
    expect(tried[1]).toBeNull();
    expect([...tried[0]!]).toEqual([...rgbaEmb!]);
    expect([...tried[2]!]).toEqual([...deepEmb!]);
    expect(await model.tryEncodeImages([Buffer.from('x')])).toEqual([null]);
  });
});

describe('loadClipModel offline', () => {
  it('loads and encodes without any network request', async () => {
    const { env } = await import('@huggingface/transformers');
    const dir = await tempDir();
    await writeColorClip(dir, { dim: 16 });
    const original = env.fetch;
    const requested: string[] = [];
    env.fetch = ((url: string) => {
      requested.push(String(url));
      throw new Error(`network request during an offline load: ${String(url)}`);
    }) as typeof env.fetch;
    try {
      const model = await loadClipModel(dir);
      await model.encodeText(['red']);
      await model.encodeImages([await solidImage([255, 0, 0])]);
      await model.close();
    } finally {
      env.fetch = original;
    }
    expect(requested).toEqual([]);
  });
});

describe('loadClipModel errors', () => {
  it('names the missing files of a model folder, before transformers.js sees it', async () => {
    const dir = await tempDir();
    await writeColorClip(dir);
    await rm(join(dir, 'onnx/vision_model.onnx'));
    await rm(join(dir, 'tokenizer.json'));
    const err = await loadClipModel(dir).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'MODEL_INVALID',
      message: `Expected a CLIP model folder at ${dir} but it is missing tokenizer.json, onnx/vision_model.onnx`,
      hint: expect.stringContaining('onnx/text_model.onnx (input_ids, attention_mask → text_embeds)'),
    });
  });

  it('asks for the quantized files when dtype is q8', async () => {
    const dir = await tempDir();
    await writeColorClip(dir);
    await expect(loadClipModel(dir, { dtype: 'q8' })).rejects.toMatchObject({
      code: 'MODEL_INVALID',
      message: expect.stringContaining('missing onnx/text_model_quantized.onnx, onnx/vision_model_quantized.onnx'),
    });
  });

  it('refuses a hub id offline instead of downloading', async () => {
    await expect(loadClipModel('Xenova/clip-vit-base-patch32')).rejects.toMatchObject({
      code: 'MODEL_INVALID',
      message: expect.stringContaining('there is no such folder'),
      hint: expect.stringContaining('needs allowRemote'),
    });
  });

  it('refuses a folder whose config is not a CLIP config', async () => {
    const dir = await tempDir();
    await writeColorClip(dir);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ model_type: 'bert' }));
    await expect(loadClipModel(dir)).rejects.toMatchObject({
      code: 'MODEL_INVALID',
      message: `Expected model_type "clip" in ${join(dir, 'config.json')} but received "bert"`,
    });
  });

  it('wraps a broken ONNX file in MODEL_INVALID', async () => {
    const dir = await tempDir();
    await writeColorClip(dir);
    await writeFile(join(dir, 'onnx/text_model.onnx'), 'not a model');
    await expect(loadClipModel(dir)).rejects.toMatchObject({
      code: 'MODEL_INVALID',
      message: expect.stringContaining('loading failed'),
    });
  });

  it("refuses ONNX files whose inputs and outputs are not CLIP's", async () => {
    const dir = await tempDir();
    await writeColorClip(dir);
    // A text model in the vision model's place: it loads, but takes input_ids and gives text_embeds.
    await writeFile(join(dir, 'onnx/vision_model.onnx'), await readFile(join(dir, 'onnx/text_model.onnx')));
    await expect(loadClipModel(dir)).rejects.toMatchObject({
      code: 'MODEL_INVALID',
      message: expect.stringContaining(
        'Expected the vision model of ' +
          dir +
          ' to take pixel_values and give image_embeds but it takes input_ids, attention_mask and gives text_embeds',
      ),
    });
  });

  it('cannot be used after close', async () => {
    const dir = await tempDir();
    await writeColorClip(dir, { dim: 8 });
    const model = await loadClipModel(dir);
    expect(model.dim).toBe(8);
    await model.close();
    await model.close();
    await expect(model.encodeText(['red'])).rejects.toMatchObject({ code: 'INTERNAL' });
  });
});
