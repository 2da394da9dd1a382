import { StringDecoder } from 'node:string_decoder';
import { inputMalformed } from '../core/errors.js';

/** Longest line / record / json element we agree to buffer: a bound on memory when a file has no line breaks. */
export const MAX_RECORD_CHARS = 16 * 1024 * 1024;

/**
 * Bytes → text, chunk by chunk. UTF-8 sequences split across chunks are joined; a leading BOM is dropped.
 * Invalid UTF-8 becomes U+FFFD (as Python's `errors="replace"`), never an exception.
 */
export async function* decodeUtf8(chunks: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let first = true;
  for await (const chunk of chunks) {
    let text = typeof chunk === 'string' ? chunk : decoder.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    if (first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    if (text.length > 0) yield text;
  }
  let rest = decoder.end();
  if (first && rest.charCodeAt(0) === 0xfeff) rest = rest.slice(1);
  if (rest.length > 0) yield rest;
}

export interface Line {
  text: string;
  /** 1-based physical line number. */
  line: number;
}

/**
 * Splits text pushed in arbitrary chunks into lines. `\n`, `\r\n` and a lone `\r` end a line (as pyarrow's csv
 * reader, which img2dataset uses for txt). A final line without a terminator is returned by `end()`.
 */
export class LineSplitter {
  private pending = '';
  private line = 1;
  private afterCr = false;

  constructor(
    private readonly source: string,
    private readonly maxChars = MAX_RECORD_CHARS,
  ) {}

  /** Appends the lines `text` completes to `out` (also returned); if it throws, `out` keeps the lines before. */
  push(text: string, out: Line[] = []): Line[] {
    let start = 0;
    let i = 0;
    if (this.afterCr) {
      this.afterCr = false;
      if (text.charCodeAt(0) === 10) start = i = 1;
    }
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      out.push({ text: this.pending + text.slice(start, i), line: this.line++ });
      this.pending = '';
      if (c === 13) {
        if (i + 1 === text.length) this.afterCr = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    if (start < text.length) {
      this.pending += text.slice(start);
      if (this.pending.length > this.maxChars) {
        throw inputMalformed(`line ${this.line} of ${this.source} is longer than ${this.maxChars} characters`, {
          hint: 'Is this really a line-based file? Check --input-format.',
        });
      }
    }
    return out;
  }

  end(): Line[] {
    if (this.pending.length === 0) return [];
    const last = { text: this.pending, line: this.line };
    this.pending = '';
    return [last];
  }
}

/**
 * Lines of a text stream with their numbers, a batch per chunk (one async step per chunk, not per line). Lines
 * completed before an error are delivered before it is thrown.
 */
export async function* splitLines(text: AsyncIterable<string>, source: string): AsyncGenerator<Line[]> {
  const splitter = new LineSplitter(source);
  for await (const chunk of text) {
    const lines: Line[] = [];
    try {
      splitter.push(chunk, lines);
    } catch (err) {
      if (lines.length > 0) yield lines;
      throw err;
    }
    if (lines.length > 0) yield lines;
  }
  const last = splitter.end();
  if (last.length > 0) yield last;
}
