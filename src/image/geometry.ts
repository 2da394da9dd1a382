/**
 * The output geometry of img2dataset's resizer (resizer.py + albumentations), computed without touching pixels,
 * so output sizes match img2dataset's exactly.
 */
/** img2dataset's resize modes. */
export const RESIZE_MODES = ['no', 'keep_ratio', 'keep_ratio_largest', 'center_crop', 'border'] as const;
export type ResizeMode = (typeof RESIZE_MODES)[number];

export interface ResizePlan {
  /** Size after the resize step, or undefined when the image is not resized. */
  resize?: { width: number; height: number };
  /** center_crop: the square taken from the resized image. */
  crop?: { left: number; top: number; width: number; height: number };
  /** border: white padding added around the resized image. */
  pad?: { top: number; bottom: number; left: number; right: number };
  width: number;
  height: number;
}

export function planResize(
  width: number,
  height: number,
  size: number,
  mode: ResizeMode,
  onlyIfBigger: boolean,
): ResizePlan {
  if (mode === 'no') return { width, height };
  if (mode === 'keep_ratio' || mode === 'center_crop') {
    const downscale = Math.min(width, height) > size;
    if (onlyIfBigger && !downscale) return { width, height };
    const resized = scaleTo(width, height, size / Math.min(width, height));
    if (mode === 'keep_ratio' || (resized.width === size && resized.height === size)) {
      return { ...maybeResize(resized, width, height), ...resized };
    }
    // albumentations center_crop: y1 = (h - crop_h) // 2, x1 = (w - crop_w) // 2
    const crop = {
      left: Math.floor((resized.width - size) / 2),
      top: Math.floor((resized.height - size) / 2),
      width: size,
      height: size,
    };
    return { ...maybeResize(resized, width, height), crop, width: size, height: size };
  }
  const downscale = Math.max(width, height) > size;
  if (onlyIfBigger && !downscale) return { width, height };
  const resized = scaleTo(width, height, size / Math.max(width, height));
  if (mode === 'keep_ratio_largest' || (resized.width === size && resized.height === size)) {
    return { ...maybeResize(resized, width, height), ...resized };
  }
  // albumentations PadIfNeeded: top = int((min_h - h) / 2), the rest at the bottom; same for left/right
  const top = Math.max(0, Math.trunc((size - resized.height) / 2));
  const left = Math.max(0, Math.trunc((size - resized.width) / 2));
  const pad = {
    top,
    bottom: Math.max(0, size - resized.height - top),
    left,
    right: Math.max(0, size - resized.width - left),
  };
  return {
    ...maybeResize(resized, width, height),
    pad,
    width: resized.width + pad.left + pad.right,
    height: resized.height + pad.top + pad.bottom,
  };
}

function maybeResize(resized: { width: number; height: number }, width: number, height: number) {
  return resized.width === width && resized.height === height ? {} : { resize: resized };
}

/** albumentations: `tuple(round(dim * scale) for dim in (height, width))`, with Python's round-half-to-even. */
function scaleTo(width: number, height: number, scale: number) {
  if (scale === 1) return { width, height };
  return { width: Math.max(1, pyRound(width * scale)), height: Math.max(1, pyRound(height * scale)) };
}

export function pyRound(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}
