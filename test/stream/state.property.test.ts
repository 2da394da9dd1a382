import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Candidate } from '../../src/select/plan.js';
import type { CachedOutcome } from '../../src/stream/cache.js';
import { parseState } from '../../src/stream/state.js';
import { Stripe, StripeReader } from '../../src/stream/stripe.js';
import { outcomeOf, runs } from '../helpers/property.js';

// For any input, the resume state parser gives a state of small integers or INVALID_OPTION; any parsed state either
// fits a stripe or is refused by it with INVALID_OPTION, and a state that fits never reads past the stripe.

const int = fc.oneof(
  fc.nat(50),
  fc.integer(),
  fc.constantFrom(-1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, Number.MAX_VALUE),
  fc.double(),
);
const valueish = fc.oneof(
  int,
  fc.string({ maxLength: 10 }),
  fc.constant(null),
  fc.boolean(),
  fc.jsonValue({ maxDepth: 2 }),
);

const stateLike = fc.record(
  {
    v: fc.oneof(fc.constant(2), fc.constant(1), valueish),
    plan: fc.oneof(fc.stringMatching(/^[0-9a-f]{16}$/), valueish),
    p: fc.oneof(fc.nat(4), int),
    P: fc.oneof(fc.integer({ min: 1, max: 5 }), int),
    epoch: fc.oneof(fc.nat(3), int),
    delivered: fc.oneof(fc.nat(40), int),
    rng: fc.oneof(fc.nat(), int),
    queries: fc.oneof(
      fc.array(fc.record({ delivered: fc.oneof(fc.nat(20), int), tail: fc.oneof(fc.nat(100), int) }), { maxLength: 3 }),
      valueish,
    ),
    extra: valueish,
  },
  { requiredKeys: ['v', 'plan', 'p', 'P', 'epoch', 'delivered', 'rng', 'queries'] },
);

const input = fc.oneof(
  stateLike,
  stateLike.map((s) => JSON.stringify(s)),
  fc.string({ maxLength: 100 }),
  valueish,
);

const candidates = (n: number): Candidate[] =>
  Array.from({ length: n }, (_, id) => ({ id, similarity: 1, url: `u${id}`, caption: null, metadata: {} }));
const ok = (id: number): CachedOutcome => ({
  ok: true,
  image: Buffer.from([id]),
  format: 'jpg',
  width: 1,
  height: 1,
  originalWidth: 1,
  originalHeight: 1,
  sha256: null,
});

describe('resume state (property)', () => {
  it('parseState: any input gives a state of safe integers or INVALID_OPTION', async () => {
    await fc.assert(
      fc.asyncProperty(input, async (x) => {
        const outcome = await outcomeOf(async () => parseState(x, 'state'));
        if (!outcome.ok) {
          expect(outcome.code).toBe('INVALID_OPTION');
          expect(outcome.message).toMatch(/^state is not a resume state/);
          return;
        }
        const s = outcome.value;
        for (const n of [s.p, s.P, s.epoch, s.delivered, s.rng, ...s.queries.flatMap((q) => [q.delivered, q.tail])]) {
          expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
        }
      }),
      { numRuns: runs(800) },
    );
  });

  it('a parsed state fits a stripe or is refused with INVALID_OPTION; one that fits delivers the rest of its quota', async () => {
    const query = fc.record({
      delivered: fc.oneof(fc.nat(30), fc.constant(Number.MAX_SAFE_INTEGER)),
      tail: fc.oneof(fc.nat(400), fc.constant(Number.MAX_SAFE_INTEGER)),
    });
    await fc.assert(
      fc.asyncProperty(
        query,
        fc.nat(25),
        fc.integer({ min: 1, max: 30 }),
        fc.option(fc.nat(), { nil: null }),
        async (start, rows, quota, seed) => {
          const outcome = await outcomeOf(async () => {
            const reader = new StripeReader(
              'q',
              new Stripe(candidates(rows), 0, 1, {}),
              quota,
              start,
              seed,
              4,
              async (c) => ok(c.id),
            );
            const ids: number[] = [];
            for (let d = start.delivered; d < quota; d++) ids.push((await reader.next()).candidate.id);
            await reader.close();
            return ids;
          });
          if (!outcome.ok) {
            expect(['INVALID_OPTION', 'STREAM_EXHAUSTED']).toContain(outcome.code);
            if (outcome.code === 'STREAM_EXHAUSTED') expect(rows).toBe(0);
            return;
          }
          expect(outcome.value).toHaveLength(Math.max(0, quota - start.delivered));
          for (const id of outcome.value) expect(id).toBeLessThan(rows);
        },
      ),
      { numRuns: runs(500) },
    );
  });
});
