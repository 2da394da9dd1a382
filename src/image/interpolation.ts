import { z } from 'zod';

/** img2dataset's interpolation names (cv2's), for its --upscale/--downscale-interpolation options. */
export const INTERPOLATIONS = ['nearest', 'linear', 'cubic', 'area', 'lanczos'] as const;
export type Interpolation = (typeof INTERPOLATIONS)[number];

/** img2dataset's other spellings of the same filters. */
export const INTERPOLATION_ALIASES: Readonly<Record<string, Interpolation>> = { bilinear: 'linear', bicubic: 'cubic', lanczos4: 'lanczos' };

/** Every spelling an interpolation option accepts. */
export const INTERPOLATION_NAMES: readonly string[] = [...INTERPOLATIONS, ...Object.keys(INTERPOLATION_ALIASES)];

/** A spelling folded into its one name; undefined for an unknown one. */
export function interpolationNamed(name: string): Interpolation | undefined {
  return (INTERPOLATIONS as readonly string[]).includes(name) ? (name as Interpolation) : INTERPOLATION_ALIASES[name];
}

/** For option schemas (download flags, spec files): any spelling in any case (img2dataset lowercases), the one name out. */
export const interpolationSchema = z
  .string()
  .transform((name) => name.toLowerCase())
  .pipe(z.enum(INTERPOLATION_NAMES as [string, ...string[]]))
  .transform((name): Interpolation => interpolationNamed(name)!);
