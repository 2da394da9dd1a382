import { inputMalformed } from '../core/errors.js';
import { MAX_RECORD_CHARS } from './lines.js';

/** One parsed csv/tsv record and the physical line it starts on (1-based). */
export interface CsvRecord {
  fields: string[];
  line: number;
}

export interface CsvParserOptions {
  /** `,` for csv, `\t` for tsv. */
  delimiter: string;
  /** The file name, for error messages. */
  source: string;
  maxFieldChars?: number;
}

const enum State {
  FieldStart,
  Unquoted,
  Quoted,
  /** Saw `"` inside a quoted field: either a doubled quote or the closing one. */
  QuoteInQuoted,
  /** A record ended with `\r`: a `\n` right after it belongs to the same line break. */
  AfterCr,
}

const LF = 10;
const CR = 13;
const QUOTE = 34;

/**
 * A streaming RFC 4180 parser: push text in chunks of any size (a chunk may end anywhere, even inside a quoted
 * field or between `\r` and `\n`), get back the records completed so far. Quoted fields may hold the delimiter,
 * doubled quotes and line breaks. Lines ending in `\n`, `\r\n` or `\r` are accepted. Completely empty lines are
 * skipped, as pyarrow (img2dataset's csv reader) does. Lenient where pyarrow is lenient: text after a closing
 * quote is appended to the field, a quote inside an unquoted field is literal.
 */
export class CsvParser {
  private readonly delimiter: number;
  private readonly maxFieldChars: number;
  private state = State.FieldStart;
  private field = '';
  private fields: string[] = [];
  private inRecord = false;
  private quoted = false;
  private line = 1;
  private recordLine = 1;
  private out: CsvRecord[] = [];

  constructor(private readonly options: CsvParserOptions) {
    if (options.delimiter.length !== 1) throw new Error('csv delimiter must be one character');
    this.delimiter = options.delimiter.charCodeAt(0);
    this.maxFieldChars = options.maxFieldChars ?? MAX_RECORD_CHARS;
  }

  /**
   * Parses `text`, appending the records it completes to `out` (also returned). If it throws, `out` still holds the
   * records completed before the error, so a caller can deliver them first.
   */
  push(text: string, out: CsvRecord[] = []): CsvRecord[] {
    this.out = out;
    const n = text.length;
    const D = this.delimiter;
    let i = 0;
    while (i < n) {
      switch (this.state) {
        case State.AfterCr:
          if (text.charCodeAt(i) === LF) i++;
          this.state = State.FieldStart;
          break;
        case State.FieldStart:
          if (!this.inRecord) {
            this.inRecord = true;
            this.quoted = false;
            this.recordLine = this.line;
          }
          if (text.charCodeAt(i) === QUOTE) {
            this.quoted = true;
            this.state = State.Quoted;
            i++;
          } else {
            this.state = State.Unquoted;
          }
          break;
        case State.Unquoted: {
          let j = i;
          let c = 0;
          while (j < n) {
            c = text.charCodeAt(j);
            if (c === D || c === LF || c === CR) break;
            j++;
          }
          if (j > i) this.append(text.slice(i, j));
          if (j === n) {
            i = n;
            break;
          }
          i = j + 1;
          this.fields.push(this.field);
          this.field = '';
          if (c === D) {
            this.state = State.FieldStart;
          } else {
            this.endRecord();
            this.line++;
            this.state = c === CR ? State.AfterCr : State.FieldStart;
          }
          break;
        }
        case State.Quoted: {
          const j = text.indexOf('"', i);
          const end = j === -1 ? n : j;
          for (let k = text.indexOf('\n', i); k !== -1 && k < end; k = text.indexOf('\n', k + 1)) this.line++;
          if (end > i) this.append(text.slice(i, end));
          if (j === -1) {
            i = n;
          } else {
            i = j + 1;
            this.state = State.QuoteInQuoted;
          }
          break;
        }
        case State.QuoteInQuoted:
          if (text.charCodeAt(i) === QUOTE) {
            this.append('"');
            this.state = State.Quoted;
            i++;
          } else {
            // The closing quote; the delimiter or line break that follows is handled as in an unquoted field.
            this.state = State.Unquoted;
          }
          break;
      }
    }
    return out;
  }

  /** Call once at the end of the input: appends the last record if the file does not end with a line break. */
  end(out: CsvRecord[] = []): CsvRecord[] {
    this.out = out;
    if (this.state === State.Quoted) {
      throw inputMalformed(
        `unterminated quoted field in ${this.options.source}: the quote opened on line ${this.recordLine} is never closed`,
      );
    }
    if (this.inRecord) {
      this.fields.push(this.field);
      this.field = '';
      this.endRecord();
    }
    this.state = State.FieldStart;
    return out;
  }

  private append(s: string): void {
    this.field += s;
    if (this.field.length > this.maxFieldChars) {
      throw inputMalformed(
        `a field of the record starting on line ${this.recordLine} of ${this.options.source} is longer than ${this.maxFieldChars} characters`,
        { hint: this.quoted ? 'Probably an unbalanced quote (").' : 'Check --input-format.' },
      );
    }
  }

  private endRecord(): void {
    const fields = this.fields;
    this.fields = [];
    this.inRecord = false;
    if (fields.length === 1 && fields[0] === '' && !this.quoted) return; // an empty line
    this.out.push({ fields, line: this.recordLine });
  }
}

/**
 * The type of a csv column, decided from the first rows of a file as pyarrow decides it from its first block:
 * a column whose non-empty sample cells are all integers is an int column, and so on.
 */
export type ColumnKind = 'int' | 'float' | 'bool' | 'string';

const INT = /^-?(?:0|[1-9]\d*)$/;
/** A decimal number; integers with leading zeros (zip codes, ids) are not numbers, their zeros would be lost. */
const FLOAT = /^[+-]?(?:(?:0|[1-9]\d*)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const BOOL = new Map<string, boolean>([
  ['true', true],
  ['True', true],
  ['TRUE', true],
  ['false', false],
  ['False', false],
  ['FALSE', false],
]);

export function inferColumnKind(cells: Iterable<string | undefined>): ColumnKind {
  let int = true;
  let float = true;
  let bool = true;
  let seen = false;
  for (const cell of cells) {
    if (cell === undefined || cell === '') continue;
    seen = true;
    const isInt = INT.test(cell);
    if (isInt && !Number.isSafeInteger(Number(cell))) return 'string'; // a big id: keep every digit
    if (int && !isInt) int = false;
    if (float && !FLOAT.test(cell)) float = false;
    if (bool && !BOOL.has(cell)) bool = false;
    if (!int && !float && !bool) return 'string';
  }
  if (!seen) return 'string';
  return int ? 'int' : float ? 'float' : bool ? 'bool' : 'string';
}

/**
 * A cell with its column's natural type. An empty cell of a typed column is null; a cell that does not fit the type
 * inferred from the sample stays a string rather than failing the whole file (pyarrow would refuse the file).
 * A missing cell (short record) is null.
 */
export function convertCell(kind: ColumnKind, cell: string | undefined): unknown {
  if (cell === undefined) return null;
  if (kind === 'string') return cell;
  if (cell === '') return null;
  switch (kind) {
    case 'int':
      return INT.test(cell) && Number.isSafeInteger(Number(cell)) ? Number(cell) : cell;
    case 'float':
      return FLOAT.test(cell) ? Number(cell) : cell;
    case 'bool':
      return BOOL.get(cell) ?? cell;
  }
}
