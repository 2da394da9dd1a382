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
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  return value;
}
