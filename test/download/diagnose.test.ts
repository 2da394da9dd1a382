import { describe, expect, it } from 'vitest';
import { explainNoSuccess } from '../../src/download/diagnose.js';

const txt = { inputFormat: 'txt' as const };

describe('why a download saved nothing', () => {
  it('says nothing when something succeeded or nothing ran', () => {
    expect(
      explainNoSuccess({ count: 5, successes: 1, reasons: { http_404: 4 }, firstUrl: 'http://x/a.jpg' }, txt),
    ).toBeUndefined();
    expect(explainNoSuccess({ count: 0, successes: 0, reasons: {}, firstUrl: undefined }, txt)).toBeUndefined();
  });

  it('private addresses: points at --allow-private-networks', () => {
    const hint = explainNoSuccess(
      { count: 3, successes: 0, reasons: { private_address: 3 }, firstUrl: 'http://127.0.0.1/a.jpg' },
      txt,
    );
    expect(hint).toMatch(/most common failure is private_address \(3 of 3\).*add --allow-private-networks/);
  });

  it('a csv or tsv header (or row) read as a txt url: points at --input-format csv / tsv', () => {
    for (const [first, format] of [
      ['url,caption', 'csv'],
      ['url', 'csv'],
      ['"URL"', 'csv'],
      ['url\tcaption', 'tsv'],
      ['http://x/a.jpg,a dog', 'csv'],
    ] as const) {
      const hint = explainNoSuccess(
        { count: 4, successes: 0, reasons: { invalid_url: 1, http_404: 3 }, firstUrl: first },
        txt,
      );
      expect(hint).toContain(`looks like a ${format} header or row read as a url`);
      expect(hint).toContain(`Use --input-format ${format}`);
    }
    const gz = explainNoSuccess(
      { count: 1, successes: 0, reasons: { invalid_url: 1 }, firstUrl: 'url,text' },
      { inputFormat: 'txt.gz' },
    );
    expect(gz).toContain('--input-format csv.gz');
    // a plain url first, or a csv input: no header story
    expect(
      explainNoSuccess({ count: 1, successes: 0, reasons: { dns_error: 1 }, firstUrl: 'http://x/a.jpg' }, txt),
    ).toMatch(/dns_error \(1 of 1\); host names do not resolve/);
    expect(
      explainNoSuccess(
        { count: 1, successes: 0, reasons: { invalid_url: 1 }, firstUrl: 'url,text' },
        { inputFormat: 'csv' },
      ),
    ).toMatch(/check --input-format and --url-col/);
  });

  it('http errors and unknown reasons get the most common one named', () => {
    expect(explainNoSuccess({ count: 2, successes: 0, reasons: { http_403: 2 }, firstUrl: 'http://x/a' }, txt)).toMatch(
      /http_403 \(2 of 2\); the servers answer with errors/,
    );
    expect(explainNoSuccess({ count: 2, successes: 0, reasons: { too_small: 2 }, firstUrl: 'http://x/a' }, txt)).toBe(
      'no sample was saved: the most common failure is too_small (2 of 2)',
    );
  });
});
