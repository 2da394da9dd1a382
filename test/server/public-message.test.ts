import { describe, expect, it } from 'vitest';
import { publicMessage } from '../../src/server/public-message.js';

describe('messages sent to HTTP clients', () => {
  it('drop Rust source locations and keep only the last part of server paths', () => {
    expect(
      publicMessage(
        'the predicate cannot be applied: Invalid user input: No field named nope, /home/runner/.cargo/registry/src/index.crates.io-6f17d22bba15001f/lance-datafusion-0.30.0/src/sql.rs:123:45',
      ),
    ).toBe('the predicate cannot be applied: Invalid user input: No field named nope');
    expect(publicMessage('the query has 3 dimensions but the index at /srv/data/indexes/laion has 512')).toBe(
      'the query has 3 dimensions but the index at laion has 512',
    );
  });

  it('leave URLs and API routes alone', () => {
    const m =
      'expected /streams/colours/{partition}.tar; image_url http://example.com/home/a/b.jpg could not be downloaded';
    expect(publicMessage(m)).toBe(m);
  });
});
