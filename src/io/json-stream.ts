import { inputMalformed } from '../core/errors.js';
import { MAX_RECORD_CHARS } from './lines.js';

/** One top-level element of a JSON array, parsed, with its 0-based position and the line it starts on. */
export interface JsonElement {
  value: Record<string, unknown>;
  element: number;
  line: number;
}

const enum State {
  /** Before the opening `[`. */
  Start,
  /** After `[` or `,`: an element (or, right after `[`, the closing `]`) comes next. */
  BeforeElement,
  InElement,
  InString,
  /** After a backslash inside a string. */
  Escape,
  /** After an element: `,` or `]`. */
  AfterElement,
  /** After the closing `]`: only whitespace. */
  Done,
}

const isSpace = (c: number) => c === 32 || c === 10 || c === 13 || c === 9;

/**
 * A streaming splitter for a JSON array of objects (what pandas `to_json(orient="records")` writes): push text in
 * chunks of any size, get back the elements completed so far. Only the element being read is held in memory, never
 * the array. Brackets, braces and escaped quotes inside strings are handled; each element is then given to
 * `JSON.parse`, so the values are exactly JSON's.
 */
export class JsonArraySplitter {
  private state = State.Start;
  private depth = 0;
  private pending = '';
  private elements = 0;
  private line = 1;
  private elementLine = 1;
  private afterComma = false;
  private readonly maxChars: number;

  constructor(
    private readonly source: string,
    maxChars = MAX_RECORD_CHARS,
  ) {
    this.maxChars = maxChars;
  }

  /**
   * Reads `text`, appending the elements it completes to `out` (also returned). If it throws, `out` still holds the
   * elements completed before the error.
   */
  push(text: string, out: JsonElement[] = []): JsonElement[] {
    const n = text.length;
    let start = this.state === State.InElement || this.state === State.InString || this.state === State.Escape ? 0 : -1;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 10) this.line++;
      switch (this.state) {
        case State.InString:
          if (c === 34) this.state = State.InElement;
          else if (c === 92) this.state = State.Escape;
          break;
        case State.Escape:
          this.state = State.InString;
          break;
        case State.InElement:
          if (c === 34) this.state = State.InString;
          else if (c === 123 || c === 91) this.depth++;
          else if (c === 125 || c === 93) {
            if (--this.depth === 0) {
              out.push(this.finish(this.pending + text.slice(start, i + 1)));
              this.pending = '';
              start = -1;
              this.state = State.AfterElement;
            }
          }
          break;
        case State.Start:
          if (isSpace(c)) break;
          if (c !== 91) throw this.syntax(`expected a JSON array ("[") but found ${show(c)}`);
          this.state = State.BeforeElement;
          break;
        case State.BeforeElement:
          if (isSpace(c)) break;
          if (c === 93 && !this.afterComma) {
            this.state = State.Done;
            break;
          }
          if (c !== 123) {
            throw this.syntax(`expected an object as element ${this.elements} but found ${show(c)}`);
          }
          this.state = State.InElement;
          this.depth = 1;
          this.elementLine = this.line;
          start = i;
          break;
        case State.AfterElement:
          if (isSpace(c)) break;
          if (c === 44) {
            this.state = State.BeforeElement;
            this.afterComma = true;
          } else if (c === 93) {
            this.state = State.Done;
          } else {
            throw this.syntax(`expected "," or "]" after element ${this.elements - 1} but found ${show(c)}`);
          }
          break;
        case State.Done:
          if (!isSpace(c)) throw this.syntax(`unexpected ${show(c)} after the end of the array`);
          break;
      }
    }
    if (start !== -1) {
      this.pending += text.slice(start);
      if (this.pending.length > this.maxChars) {
        throw inputMalformed(
          `element ${this.elements} (line ${this.elementLine}) of ${this.source} is longer than ${this.maxChars} characters`,
          { hint: 'Probably an unterminated string or object.' },
        );
      }
    }
    return out;
  }

  /** Call at the end of the input: the array must be complete. */
  end(): void {
    if (this.state === State.Done) return;
    if (this.state === State.Start) return; // an empty file: no rows
    throw inputMalformed(
      `unexpected end of ${this.source}: the JSON array is not closed` +
        (this.state === State.AfterElement || this.state === State.BeforeElement
          ? ` (after ${this.elements} elements)`
          : ` (element ${this.elements}, starting on line ${this.elementLine}, is incomplete)`),
    );
  }

  private finish(text: string): JsonElement {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw inputMalformed(
        `invalid JSON in element ${this.elements} (line ${this.elementLine}) of ${this.source}: ${(err as Error).message}`,
      );
    }
    this.afterComma = false;
    return { value: value as Record<string, unknown>, element: this.elements++, line: this.elementLine };
  }

  private syntax(what: string) {
    return inputMalformed(`invalid JSON in ${this.source} on line ${this.line}: ${what}`, {
      hint: 'A json url list is one JSON array of objects, as pandas to_json(orient="records") writes; use --input-format jsonl for one object per line.',
    });
  }
}

function show(c: number): string {
  return JSON.stringify(String.fromCharCode(c));
}

/** Parses one jsonl line; it must hold an object. */
export function parseJsonLine(text: string, line: number, source: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw inputMalformed(`invalid JSON on line ${line} of ${source}: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw inputMalformed(`line ${line} of ${source} is not a JSON object`, {
      hint: 'A jsonl url list has one object per line, e.g. {"url": "…", "caption": "…"}.',
    });
  }
  return value as Record<string, unknown>;
}
