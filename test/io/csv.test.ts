import { describe, expect, it } from 'vitest';
import { CsvParser, convertCell, inferColumnKind, type CsvRecord } from '../../src/io/csv.js';
import { LineSplitter, decodeUtf8 } from '../../src/io/lines.js';

/** Parses `text` fed in pieces of `chunk` characters (the last piece may be shorter). */
function parse(text: string, chunk = text.length || 1, delimiter = ','): CsvRecord[] {
  const parser = new CsvParser({ delimiter, source: 'mem.csv' });
  const out: CsvRecord[] = [];
  for (let i = 0; i < text.length; i += chunk) out.push(...parser.push(text.slice(i, i + chunk)));
  out.push(...parser.end());
  return out;
}
const fields = (records: CsvRecord[]) => records.map((r) => r.fields);

const tricky =
  'url,caption,n\r\n' +
  'http://a/1.jpg,"a cat, sitting",1\r\n' +
  'http://a/2.jpg,"say ""cheese""",2\r\n' +
  'http://a/3.jpg,"two\nlines\r\nthree",3\r\n' +
  '\r\n' +
  'http://a/4.jpg,,4\n' +
  'http://a/5.jpg,"",5\r' +
  'http://a/6.jpg,plain "inner" quotes,6';
const trickyFields = [
  ['url', 'caption', 'n'],
  ['http://a/1.jpg', 'a cat, sitting', '1'],
  ['http://a/2.jpg', 'say "cheese"', '2'],
  ['http://a/3.jpg', 'two\nlines\r\nthree', '3'],
  ['http://a/4.jpg', '', '4'],
  ['http://a/5.jpg', '', '5'],
  ['http://a/6.jpg', 'plain "inner" quotes', '6'],
];

describe('CsvParser', () => {
  it('handles quoted commas, doubled quotes, newlines inside quotes, CRLF / LF / CR and empty lines', () => {
    const records = parse(tricky);
    expect(fields(records)).toEqual(trickyFields);
    expect(records.map((r) => r.line)).toEqual([1, 2, 3, 4, 8, 9, 10]);
  });

  it('gives the same records for every chunk size, so a chunk may end anywhere (inside quotes, between \\r and \\n)', () => {
    for (let chunk = 1; chunk <= tricky.length; chunk++) {
      expect(fields(parse(tricky, chunk)), `chunk size ${chunk}`).toEqual(trickyFields);
    }
  });

  it('splits tsv on tabs, with quoting', () => {
    expect(fields(parse('url\tcaption\nhttp://x\t"a\tb"\n', 3, '\t'))).toEqual([
      ['url', 'caption'],
      ['http://x', 'a\tb'],
    ]);
  });

  it('keeps a trailing empty field and a last line without a line break', () => {
    expect(fields(parse('a,b,\n1,2,'))).toEqual([
      ['a', 'b', ''],
      ['1', '2', ''],
    ]);
    expect(fields(parse('a\n""\n'))).toEqual([['a'], ['']]); // a quoted empty field is a row, an empty line is not
  });

  it('refuses an unterminated quote, naming the file and the line it opened on', () => {
    const go = () => parse('url,caption\nhttp://x,"never closed\nmore\n', 4);
    expect(go).toThrow(expect.objectContaining({ code: 'INPUT_MALFORMED' }));
    expect(go).toThrow(/mem\.csv.*line 2/);
  });

  it('bounds the memory of a runaway field', () => {
    const parser = new CsvParser({ delimiter: ',', source: 'big.csv', maxFieldChars: 100 });
    parser.push('url\n"');
    expect(() => parser.push('x'.repeat(200))).toThrow(expect.objectContaining({ code: 'INPUT_MALFORMED' }));
  });
});

describe('csv column types', () => {
  it('infers int / float / bool / string from the sample, ignoring empty cells', () => {
    expect(inferColumnKind(['1', '-20', '', '0'])).toBe('int');
    expect(inferColumnKind(['1', '2.5', '1e3'])).toBe('float');
    expect(inferColumnKind(['true', 'False', undefined])).toBe('bool');
    expect(inferColumnKind(['1', 'x'])).toBe('string');
    expect(inferColumnKind(['007', '10'])).toBe('string'); // zip codes and ids keep their zeros
    expect(inferColumnKind(['0.5', '-0', '1.'])).toBe('float');
    expect(inferColumnKind(['1', '9007199254740993'])).toBe('string'); // too big for a double: keep every digit
    expect(inferColumnKind(['', undefined])).toBe('string');
    expect(inferColumnKind(['toString'])).toBe('string');
  });

  it('converts cells, keeping what does not fit as a string and missing cells as null', () => {
    expect(convertCell('int', '42')).toBe(42);
    expect(convertCell('int', '')).toBeNull();
    expect(convertCell('int', 'n/a')).toBe('n/a');
    expect(convertCell('float', '2.5')).toBe(2.5);
    expect(convertCell('bool', 'TRUE')).toBe(true);
    expect(convertCell('string', '')).toBe('');
    expect(convertCell('string', undefined)).toBeNull();
  });
});

describe('text decoding and lines', () => {
  it('joins UTF-8 sequences split across byte chunks and drops a BOM', async () => {
    const bytes = Buffer.from('\ufeffurl\nhttp://x/ü🐱\n', 'utf8');
    async function* oneByteAtATime() {
      for (const b of bytes) yield Buffer.from([b]);
    }
    let text = '';
    for await (const s of decodeUtf8(oneByteAtATime())) text += s;
    expect(text).toBe('url\nhttp://x/ü🐱\n');
  });

  it('splits lines on \\n, \\r\\n and \\r, whatever the chunking', () => {
    const input = 'a\r\nb\rc\n\nd';
    for (let chunk = 1; chunk <= input.length; chunk++) {
      const s = new LineSplitter('mem.txt');
      const lines = [];
      for (let i = 0; i < input.length; i += chunk) lines.push(...s.push(input.slice(i, i + chunk)));
      lines.push(...s.end());
      expect(lines.map((l) => [l.text, l.line])).toEqual([
        ['a', 1],
        ['b', 2],
        ['c', 3],
        ['', 4],
        ['d', 5],
      ]);
    }
  });
});
