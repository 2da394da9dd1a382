import { describe, expect, it } from 'vitest';
import { JsonArraySplitter, parseJsonLine } from '../../src/io/json-stream.js';

function split(text: string, chunk = text.length || 1, maxChars?: number): unknown[] {
  const s = new JsonArraySplitter('mem.json', maxChars);
  const out: unknown[] = [];
  for (let i = 0; i < text.length; i += chunk) out.push(...s.push(text.slice(i, i + chunk)).map((e) => e.value));
  s.end();
  return out;
}

const trickyRows = [
  { url: 'http://a/1.jpg', caption: 'brackets ] [ and braces } { inside', n: 1 },
  { url: 'http://a/2.jpg', caption: 'escaped \\"quote\\" and a backslash at the end \\', n: 2 },
  { url: 'http://a/3.jpg', caption: 'ünïcødé 🐱 / \u2028', nested: { list: [1, [2, { x: '}' }]] }, n: null },
  { url: null, caption: '', n: -3.5 },
];

describe('JsonArraySplitter', () => {
  it('yields one object at a time with strings holding brackets, braces and escaped quotes, for every chunk size', () => {
    // pandas escapes "/" and non-ASCII; both spellings must work.
    const pretty = JSON.stringify(trickyRows, null, 2);
    const pandasLike = JSON.stringify(trickyRows)
      .replace(/\//g, '\\/')
      .replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    for (const text of [pretty, pandasLike]) {
      for (let chunk = 1; chunk <= 40; chunk++) expect(split(text, chunk), `chunk ${chunk}`).toEqual(trickyRows);
      expect(split(text)).toEqual(trickyRows);
    }
  });

  it('reports element numbers and lines', () => {
    const s = new JsonArraySplitter('mem.json');
    const got = s.push('[\n{"a":1},\n\n{"a":2}\n]');
    expect(got.map((e) => [e.element, e.line])).toEqual([
      [0, 2],
      [1, 4],
    ]);
    s.end();
  });

  it('accepts an empty array and an empty file', () => {
    expect(split(' [ ] \n')).toEqual([]);
    expect(split('')).toEqual([]);
  });

  it.each([
    ['not an array', '{"url": "x"}', /expected a JSON array/],
    ['not objects', '["http://x"]', /expected an object as element 0/],
    ['a missing comma', '[{"a":1} {"a":2}]', /expected "," or "]" after element 0/],
    ['a trailing comma', '[{"a":1},]', /expected an object as element 1/],
    ['trailing content', '[{"a":1}] x', /after the end of the array/],
    ['a bad element', '[{"a":1},\n{"a": tru}]', /invalid JSON in element 1 \(line 2\) of mem\.json/],
    ['a truncated file', '[{"a":1},{"a":"unfinished', /not closed.*element 1/],
    ['a missing "]"', '[{"a":1}', /not closed \(after 1 elements\)/],
  ])('refuses %s with INPUT_MALFORMED naming the file', (_, text, message) => {
    const go = () => split(text, 3);
    expect(go).toThrow(expect.objectContaining({ code: 'INPUT_MALFORMED' }));
    expect(go).toThrow(message);
    expect(go).toThrow(/mem\.json/);
  });

  it('holds one element at most: a runaway string is refused once it passes the bound', () => {
    expect(() => split(`[{"a": "${'x'.repeat(500)}`, 10, 100)).toThrow(/longer than 100 characters/);
  });
});

describe('parseJsonLine', () => {
  it('parses an object and refuses other values and bad JSON with the line number', () => {
    expect(parseJsonLine('{"url":"x"}', 1, 'a.jsonl')).toEqual({ url: 'x' });
    expect(() => parseJsonLine('[1]', 3, 'a.jsonl')).toThrow(/line 3 of a\.jsonl is not a JSON object/);
    expect(() => parseJsonLine('{"url":', 7, 'a.jsonl')).toThrow(/invalid JSON on line 7 of a\.jsonl/);
  });
});
