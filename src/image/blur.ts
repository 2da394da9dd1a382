import sharp from 'sharp';

/** `[x_min, y_min, x_max, y_max]`, relative to the image (img2dataset's bbox_col). */
export type BlurBox = readonly [number, number, number, number];

/** More boxes than this in one row is not a face list: the row fails (invalid_bbox) instead of costing a pass each. */
export const MAX_BLUR_BOXES = 1000;

export type ParsedBoxes = { ok: true; boxes: BlurBox[] | undefined } | { ok: false; message: string };

/**
 * A bbox cell as img2dataset reads it: a list of `[x_min, y_min, x_max, y_max]` lists (parquet, json), or the same
 * as JSON text (csv, tsv: img2dataset itself fails on those). Null or empty: nothing to blur.
 */
export function parseBlurBoxes(cell: unknown): ParsedBoxes {
  if (cell === null || cell === undefined) return { ok: true, boxes: undefined };
  let value: unknown = cell;
  if (typeof cell === 'string') {
    if (cell.trim() === '') return { ok: true, boxes: undefined };
    try {
      value = JSON.parse(cell) as unknown;
    } catch {
      return {
        ok: false,
        message: `Expected a JSON list of [x_min, y_min, x_max, y_max] boxes but received ${JSON.stringify(cell.slice(0, 80))}`,
      };
    }
  }
  if (!isList(value))
    return {
      ok: false,
      message: `Expected a list of [x_min, y_min, x_max, y_max] boxes but received ${describe(value)}`,
    };
  if (value.length > MAX_BLUR_BOXES)
    return { ok: false, message: `Expected at most ${MAX_BLUR_BOXES} boxes but received ${value.length}` };
  const boxes: BlurBox[] = [];
  for (const item of Array.from(value)) {
    const box = isList(item) ? Array.from(item, Number) : [];
    if (box.length !== 4 || !box.every(Number.isFinite)) {
      return {
        ok: false,
        message: `Expected [x_min, y_min, x_max, y_max] with 4 finite numbers for each box but received ${describe(item)}`,
      };
    }
    boxes.push(box as unknown as BlurBox);
  }
  return { ok: true, boxes };
}

function isList(value: unknown): value is ArrayLike<unknown> {
  return Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView));
}

function describe(value: unknown): string {
  try {
    return (
      JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))?.slice(0, 80) ?? String(value)
    );
  } catch {
    return typeof value;
  }
}

/** Interleaved 8-bit pixels, as sharp's raw output gives them. */
export interface RawImage {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/**
 * img2dataset's BoundingBoxBlurrer (blurrer.py, after ImageNet's face obfuscation): each box, in pixels of this
 * image, grows by a tenth of its longer side on every side; the union of the grown boxes is a mask; image and mask
 * are blurred with the same Gaussian — kernel size 2·ceil(σ)+1 with σ a tenth of the longest box side (min 3),
 * cv2's σ for that size — and the blurred mask mixes blurred into original pixels, so the edges are feathered.
 * Pixels further than the kernel's radius from every grown box keep their exact values (img2dataset's float
 * round trip truncates some of them by one level; here they are not touched). The convolutions run in libvips,
 * separably (two 1-D passes), over the boxes' surroundings only, with edges replicated where cv2 reflects them
 * (at the image's edges; inside it the region is wide enough for the result to be the whole image's).
 * Returns the image unchanged when no box covers a pixel.
 */
export async function blurBoxes(image: RawImage, boxes: readonly BlurBox[]): Promise<RawImage> {
  const { width, height, channels: c } = image;
  const { rects, longestSide } = maskRects(boxes, width, height);
  if (rects.length === 0) return image;
  const kernel = gaussianKernel(kernelSize(longestSide));
  // Only the region within two kernel radii of the boxes is convolved: the mask's blur reaches one radius out,
  // and the image's blur there reads one more.
  const reach = kernel.length - 1;
  const x0 = Math.max(0, Math.min(...rects.map((r) => r.x0)) - reach);
  const y0 = Math.max(0, Math.min(...rects.map((r) => r.y0)) - reach);
  const w = Math.min(width, Math.max(...rects.map((r) => r.x1)) + reach) - x0;
  const h = Math.min(height, Math.max(...rects.map((r) => r.y1)) + reach) - y0;
  const region = Buffer.alloc(w * h * c);
  for (let y = 0; y < h; y++)
    image.data.copy(region, y * w * c, ((y0 + y) * width + x0) * c, ((y0 + y) * width + x0 + w) * c);
  const mask = Buffer.alloc(w * h);
  for (const r of rects)
    for (let y = r.y0; y < r.y1; y++) mask.fill(255, (y - y0) * w + r.x0 - x0, (y - y0) * w + r.x1 - x0);
  const [blurred, feather] = await Promise.all([
    convolveSeparable({ data: region, width: w, height: h, channels: c }, kernel),
    convolveSeparable({ data: mask, width: w, height: h, channels: 1 }, kernel),
  ]);
  const out = Buffer.from(image.data);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const m = feather.data[y * w + x]!;
      if (m === 0) continue;
      const at = ((y0 + y) * width + x0 + x) * c;
      const from = (y * w + x) * c;
      for (let i = 0; i < c; i++)
        out[at + i] = Math.round(out[at + i]! + ((blurred.data[from + i]! - out[at + i]!) * m) / 255);
    }
  }
  return { ...image, data: out };
}

/** Whether any box covers a pixel of a width × height image (else blurBoxes changes nothing). */
export function blursAnything(boxes: readonly BlurBox[] | undefined, width: number, height: number): boolean {
  return boxes !== undefined && maskRects(boxes, width, height).rects.length > 0;
}

interface Rect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** blurrer.py's box arithmetic: Python's int() truncation, the clip to [0, size - 1], exclusive ends. */
export function maskRects(
  boxes: readonly BlurBox[],
  width: number,
  height: number,
): { rects: Rect[]; longestSide: number } {
  const clip = (v: number, size: number) => Math.min(Math.max(v, 0), size - 1);
  let longestSide = 0;
  const rects: Rect[] = [];
  for (const b of boxes) {
    const [x0, y0, x1, y1] = [
      Math.trunc(b[0] * width),
      Math.trunc(b[1] * height),
      Math.trunc(b[2] * width),
      Math.trunc(b[3] * height),
    ];
    const side = Math.max(x1 - x0, y1 - y0);
    longestSide = Math.max(longestSide, side);
    const grow = 0.1 * side;
    const rect = {
      x0: clip(Math.trunc(x0 - grow), width),
      y0: clip(Math.trunc(y0 - grow), height),
      x1: clip(Math.trunc(x1 + grow), width),
      y1: clip(Math.trunc(y1 + grow), height),
    };
    if (rect.x1 > rect.x0 && rect.y1 > rect.y0) rects.push(rect);
  }
  return { rects, longestSide };
}

/** blurrer.py: σ = 0.1 × the longest box side, kernel 2·ceil(σ)+1, at least 3 (at most sharp's 1001: a 5000 px box). */
export function kernelSize(longestSide: number): number {
  const k = Math.max(3, Math.trunc(2 * Math.ceil(0.1 * longestSide) + 1));
  return Math.min(MAX_KERNEL, k % 2 === 0 ? k + 1 : k);
}

/** cv2.getGaussianKernel(k, 0): fixed binomial kernels up to 7 taps, else σ = 0.3·((k−1)/2 − 1) + 0.8. */
export function gaussianKernel(k: number): number[] {
  const fixed: Record<number, number[]> = {
    3: [0.25, 0.5, 0.25],
    5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
    7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125],
  };
  if (fixed[k]) return fixed[k];
  const sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8;
  const weights = Array.from({ length: k }, (_, i) => Math.exp(-((i - (k - 1) / 2) ** 2) / (2 * sigma * sigma)));
  const sum = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => w / sum);
}

/** sharp's largest kernel side. */
const MAX_KERNEL = 1001;

/**
 * Two 1-D libvips convolutions (rows, then columns). sharp takes kernels of 3 to 1001 taps a side, so a 1-D
 * kernel is the middle row (column) of a k×3 (3×k) one: libvips skips the zero weights. Integer weights keep
 * libvips on its fast 8-bit path.
 */
async function convolveSeparable(image: RawImage, kernel: number[]): Promise<RawImage> {
  const k = kernel.length;
  const weights = kernel.map((w) => Math.round(w * 65_536));
  const scale = weights.reduce((a, b) => a + b, 0);
  const zeros = new Array<number>(k).fill(0);
  const rows = [...zeros, ...weights, ...zeros];
  const columns = weights.flatMap((w) => [0, w, 0]);
  const pass = async (input: RawImage, horizontal: boolean): Promise<RawImage> => {
    const { data, info } = await sharp(input.data, {
      raw: { width: input.width, height: input.height, channels: input.channels },
    })
      .convolve({ width: horizontal ? k : 3, height: horizontal ? 3 : k, kernel: horizontal ? rows : columns, scale })
      // sharp writes a one-band image as sRGB unless told otherwise
      .toColourspace(input.channels === 1 ? 'b-w' : 'srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== input.channels) throw new Error(`blur: ${input.channels} bands in, ${info.channels} out`);
    return { ...input, data };
  };
  return pass(await pass(image, true), false);
}
