// Photo-like JPEGs around 640×480 and ~60 KB: smooth random colour fields plus fine grain, deterministic per seed.
import sharp from 'sharp';

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

export async function photoLikeJpeg(seed, width = 640, height = 480) {
  const rand = rng(seed * 7919 + 17);
  const cw = 24;
  const ch = 18;
  const coarse = Buffer.alloc(cw * ch * 3);
  for (let i = 0; i < coarse.length; i++) coarse[i] = Math.floor(rand() * 256);
  const field = await sharp(coarse, { raw: { width: cw, height: ch, channels: 3 } })
    .resize(width, height, { kernel: 'cubic' })
    .raw()
    .toBuffer();
  for (let i = 0; i < field.length; i++)
    field[i] = Math.max(0, Math.min(255, field[i] + Math.floor((rand() - 0.5) * 36)));
  return sharp(field, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 80 })
    .toBuffer();
}

export async function photoSet(count) {
  const images = [];
  for (let i = 0; i < count; i++) images.push(await photoLikeJpeg(i, 600 + (i % 5) * 20, 450 + (i % 3) * 15));
  return images;
}
