import { invalidOption } from '../core/errors.js';
import { localPathOf, parseList } from '../core/validation.js';

/** Flag value parsers for commander. They only convert text; zod validates ranges and choices afterwards. */

export function toNumber(flag: string) {
  return (value: string): number => {
    const v = value.trim().toLowerCase();
    if (v === 'inf' || v === 'infinity') return Infinity;
    const n = Number(v);
    if (v === '' || Number.isNaN(n))
      throw invalidOption(`Expected a number for ${flag} but received ${JSON.stringify(value)}`);
    return n;
  };
}

export function toBoolean(flag: string) {
  return (value: string | undefined): boolean => {
    if (value === undefined) return true;
    const v = value.trim().toLowerCase();
    if (['true', '1', 'yes'].includes(v)) return true;
    if (['false', '0', 'no'].includes(v)) return false;
    throw invalidOption(`Expected true or false for ${flag} but received ${JSON.stringify(value)}`);
  };
}

export function toList(_flag: string) {
  return (value: string): string[] => parseList(value);
}

/** img2dataset users type `--url_list`: accept snake_case long flags as their kebab-case twins. */
export function normalizeFlags(argv: string[]): string[] {
  return argv.map((arg) => {
    if (!arg.startsWith('--')) return arg;
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    return name.replaceAll('_', '-') + (eq === -1 ? '' : arg.slice(eq));
  });
}

/**
 * img2dataset and clip-retrieval take fsspec URLs (s3://, gs://, hf://…) for their folders; we take local paths,
 * and s3:// (`s3`) or http(s) (`urls`) where the flag says so. Without this check `gs://bucket/out` would quietly
 * become a local folder named `gs:`.
 */
export function toLocalPath(flag: string, options: { urls?: boolean; s3?: boolean } = {}) {
  return (value: string): string => localPathOf(value, flag, options);
}
