/** JSON.stringify replacer for values JSON has no literal for: bigint → number when exact, else text; bytes → base64. */
export function jsonReplacer(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'bigint') {
    const n = Number(value);
    return BigInt(n) === value ? n : value.toString();
  }
  if (value !== null && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer') {
    // Buffer#toJSON already ran: { type: 'Buffer', data: [...] }
    const data = (value as { data?: unknown }).data;
    if (Array.isArray(data)) return Buffer.from(data as number[]).toString('base64');
  }
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  return value;
}

/**
 * Deepest nesting of arrays and objects a value read from input may have (`[[1]]` is 2). Real metadata is a few
 * levels deep, while every consumer of a value recurses: JSON.stringify with a replacer overflows V8's default stack
 * at ~2 500 levels, without one and structured clone (to a worker) at ~4 000. JSON.parse itself does not recurse, so
 * a url list could bring a value nested 200 000 deep and crash whatever touched it next.
 */
export const MAX_JSON_DEPTH = 100;

/**
 * Whether `value` nests arrays / plain objects deeper than `max`. Recursive, but never more than `max` + 1 frames
 * deep (it stops there), and it returns at once for a scalar, the common cell.
 */
export function nestedDeeperThan(value: unknown, max = MAX_JSON_DEPTH): boolean {
  if (value === null || typeof value !== 'object') return false;
  const array = Array.isArray(value);
  if (!array && !isPlainObject(value)) return false; // Date, bytes: leaves
  if (max <= 0) return true;
  if (array) {
    for (const item of value) if (nestedDeeperThan(item, max - 1)) return true;
    return false;
  }
  for (const key in value) if (nestedDeeperThan((value as Record<string, unknown>)[key], max - 1)) return true;
  return false;
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}
