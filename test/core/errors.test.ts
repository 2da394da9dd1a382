import { describe, expect, it } from 'vitest';
import { reportError } from '../../src/cli/report.js';
import { ERROR_CATALOGUE, ERROR_HELPERS, type ErrorCode } from '../../src/core/errors.js';
import { errorReply } from '../../src/server/app.js';

const codes = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

describe("the error catalogue is the one place a code's exit status and HTTP status live", () => {
  it.each(codes)('%s: its helper, the CLI and the server all follow the table', (code) => {
    const entry = ERROR_CATALOGUE[code];
    const err = ERROR_HELPERS[code]('something went wrong at /srv/data/idx', { hint: 'do this' });
    expect(err.code).toBe(code);
    let printed = '';
    expect(reportError(err, (text) => (printed += text))).toBe(entry.exit);
    const { status, body } = errorReply(err);
    expect(status).toBe(entry.http);
    if (entry.kind === 'bug') {
      expect(printed).toMatch(/^clipstream: internal error: .*\n {2}this is a bug in clipstream: please report it/);
      expect(body).toEqual({ error: expect.stringMatching(/bug in clipstream, please report it/), code: 'INTERNAL' });
      expect(body.error).not.toMatch(/srv/); // a bug's message stays in the server log
    } else {
      expect(printed).toBe('clipstream: error: something went wrong at /srv/data/idx\n  do this\n');
      expect(body).toEqual({ error: 'something went wrong at idx', code, hint: 'do this' }); // no server path
      expect(entry.exit).toBe(entry.kind === 'input' ? 2 : 1);
      expect(status >= 400 && status < 600).toBe(true);
      expect(status < 500).toBe(entry.kind === 'input');
    }
  });

  it('anything that is not ours is a bug: exit 70, a 500', () => {
    let printed = '';
    expect(reportError(new TypeError('x is undefined'), (t) => (printed += t))).toBe(70);
    expect(printed).toMatch(/please report it/);
    expect(errorReply(new TypeError('x') as never).status).toBe(500);
  });
});
