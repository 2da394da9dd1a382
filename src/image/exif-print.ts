/**
 * Python's text forms of the values exifread prints, so the `exif` json is the string img2dataset writes
 * (`json.dumps({name: str(tag).strip()})`): `str(Fraction)`, `repr(float)`, `repr(str)`, `repr(bytes)`,
 * `str.strip()` and json.dumps' default separators and ASCII escapes.
 */

/** `str(Fraction(num, den))`: reduced, sign on the numerator, `n` when the denominator is 1. exifread keeps x/0 as is. */
export function fractionText(num: number, den: number): string {
  if (den === 0) return `${num}/0`;
  const g = gcd(Math.abs(num), Math.abs(den));
  let n = num / g;
  let d = den / g;
  if (d < 0) {
    n = -n;
    d = -d;
  }
  return d === 1 ? String(n) : `${n}/${d}`;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a === 0 ? 1 : a;
}

/** `repr(float)`: the shortest round-trip digits, fixed notation for 1e-4 <= |x| < 1e16, else `1e-05` / `1e+16`. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, exp] = x.toExponential().split('e') as [string, string];
  const e = Number(exp);
  const sign = mantissa.startsWith('-') ? '-' : '';
  const digits = mantissa.replace('-', '').replace('.', '');
  if (e < -4 || e >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  if (e < 0) return `${sign}0.${'0'.repeat(-e - 1)}${digits}`;
  const whole = digits.slice(0, e + 1).padEnd(e + 1, '0');
  const fraction = digits.slice(e + 1);
  return `${sign}${whole}.${fraction === '' ? '0' : fraction}`;
}

/** `repr(str)` for one-line values: single quotes unless the text has ' and no ". */
export function pyStrRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\' || ch === quote) out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || (c >= 0x7f && c <= 0xa0)) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + quote;
}

/** `repr(bytes)`: b'…' with printable ASCII as is and \xNN for the rest. */
export function pyBytesRepr(bytes: Uint8Array): string {
  const text = Array.from(bytes, (b) => String.fromCharCode(b)).join('');
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = 'b' + quote;
  for (const b of bytes) {
    const ch = String.fromCharCode(b);
    if (ch === '\\' || ch === quote) out += '\\' + ch;
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x0d) out += '\\r';
    else if (b === 0x09) out += '\\t';
    else if (b < 0x20 || b >= 0x7f) out += '\\x' + b.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + quote;
}

/** Python's whitespace (`str.isspace`): JavaScript's `\s` without U+FEFF, with U+001C–U+001F and U+0085. */
const PY_SPACE = '[\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const PY_STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, 'g');

/** Python's `str.strip()`. */
export function pyStrip(text: string): string {
  return text.replace(PY_STRIP, '');
}

/** `json.dumps(obj)` of a flat string map: `{"k": "v", "k2": "v2"}`, every non-ASCII character escaped. */
export function jsonDumpsAscii(entries: Iterable<[string, string]>): string {
  const parts: string[] = [];
  for (const [k, v] of entries) parts.push(`${asciiJson(k)}: ${asciiJson(v)}`);
  return `{${parts.join(', ')}}`;
}

function asciiJson(text: string): string {
  // JSON.stringify escapes quotes, backslashes and control characters as json.dumps does (\n, \u001f, …)
  return JSON.stringify(text).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}
