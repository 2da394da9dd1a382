import { z } from 'zod';

/** img2dataset's interpolation names (cv2's), for its --upscale/--downscale-interpolation options. */
export const INTERPOLATIONS = ['nearest', 'linear', 'cubic', 'area', 'lanczos'] as const;
export type Interpolation = (typeof INTERPOLATIONS)[number];

/** img2dataset's other spellings of the same filters. */
const INTERPOLATION_ALIASES: Readonly<Record<string, Interpolation>> = {
  bilinear: 'linear',
  bicubic: 'cubic',
  lanczos4: 'lanczos',
};

/** Every spelling an interpolation option accepts. */
export const INTERPOLATION_NAMES: readonly string[] = [...INTERPOLATIONS, ...Object.keys(INTERPOLATION_ALIASES)];

/** For option schemas (download flags, spec files): any spelling in any case (img2dataset lowercases), the one name out. */
export const interpolationSchema = z
  .string()
  .transform((name) => name.toLowerCase())
  .pipe(z.enum(INTERPOLATION_NAMES as [string, ...string[]]))
  .transform((name): Interpolation => INTERPOLATION_ALIASES[name] ?? (name as Interpolation));
