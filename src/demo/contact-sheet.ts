import sharp, { type OverlayOptions } from 'sharp';

export interface LabelledImage {
  label: string;
  image: Buffer;
}

/**
 * A PNG grid of thumbnails, one row per label, the label written at the start of the row: a person sees at a
 * glance that "red" gave red. Rows follow `order` (the spec's queries), then any other label as first met.
 */
export async function writeContactSheet(
  path: string,
  images: LabelledImage[],
  { thumb = 96, perRow = 8, gap = 6, labelWidth = 140, order = [] as string[] } = {},
): Promise<{ rows: number; labels: string[]; thumbnails: number }> {
  const byLabel = new Map<string, Buffer[]>();
  for (const { label, image } of images) {
    const list = byLabel.get(label) ?? [];
    if (list.length < perRow) list.push(image);
    byLabel.set(label, list);
  }
  const labels = [...new Set([...order.filter((l) => byLabel.has(l)), ...byLabel.keys()])];
  const width = labelWidth + perRow * (thumb + gap) + gap;
  const height = Math.max(1, labels.length) * (thumb + gap) + gap;
  const layers: OverlayOptions[] = [];
  let count = 0;
  for (const [row, label] of labels.entries()) {
    const top = gap + row * (thumb + gap);
    layers.push({ input: labelImage(label, labelWidth, thumb), left: 0, top });
    for (const [col, image] of byLabel.get(label)!.entries()) {
      const input = await sharp(image).resize(thumb, thumb, { fit: 'cover' }).png().toBuffer();
      layers.push({ input, left: labelWidth + gap + col * (thumb + gap), top });
      count++;
    }
  }
  await sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite(layers)
    .png()
    .toFile(path);
  return { rows: labels.length, labels, thumbnails: count };
}

function labelImage(label: string, width: number, height: number): Buffer {
  const text = label.replace(/[<>&"']/g, ' ').slice(0, 18);
  return Buffer.from(
    `<svg width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">` +
      `<text x="8" y="${Math.round(height / 2) + 7}" font-size="20" font-family="sans-serif" fill="#222">${text}</text></svg>`,
  );
}
