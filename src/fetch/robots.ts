/** X-Robots-Tag opt-out, with img2dataset's `is_disallowed` semantics (downloader.py). */

export const DEFAULT_DISALLOWED_DIRECTIVES: readonly string[] = ['noai', 'noimageai', 'noindex', 'noimageindex'];

export const OPTED_OUT_MESSAGE = 'Use of image disallowed by X-Robots-Tag directive';

/**
 * For each header value: split on the first `:`; with two parts the first is a UA token (stripped, lowercased) and
 * the rest the directives. Directives are comma-split, stripped and lowercased. Disallowed when (no UA token, or
 * the token equals ours) and any directive is in `disallowed`.
 */
export function isDisallowedByRobotsTag(
  headerValues: string[],
  token: string | undefined,
  disallowed: string[],
): boolean {
  if (disallowed.length === 0) return false;
  const banned = new Set(disallowed.map((d) => d.trim().toLowerCase()));
  const ours = token?.trim().toLowerCase();
  for (const value of headerValues) {
    const colon = value.indexOf(':');
    const uaToken = colon === -1 ? undefined : value.slice(0, colon).trim().toLowerCase();
    const directives = colon === -1 ? value : value.slice(colon + 1);
    if (uaToken !== undefined && uaToken !== ours) continue;
    if (directives.split(',').some((d) => banned.has(d.trim().toLowerCase()))) return true;
  }
  return false;
}

/** Header values as undici gives them (absent, one string, or one string per header line). */
export function headerValues(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
