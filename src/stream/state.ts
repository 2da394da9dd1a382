import { z } from 'zod';
import { invalidOption } from '../core/errors.js';
import { MAX_PARTITIONS } from './partition.js';

/** The resume state of one partition (docs/streaming.md): a few integers, whatever the dataset size. */
export interface StreamState {
  v: 2;
  /** The plan's id: a state is only valid for the plan it was made with. */
  plan: string;
  p: number;
  P: number;
  epoch: number;
  delivered: number;
  /** The interleaving PRNG's state after the last pick. */
  rng: number;
  queries: QueryState[];
}

/** A query's walk over its stripe (src/stream/stripe.ts): samples delivered and tail positions used. */
export interface QueryState {
  delivered: number;
  tail: number;
}

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const stateSchema = z
  .object({
    v: z.literal(2, {
      message:
        'it was made by an earlier clipstream (format 1, whose epochs did not reshuffle): start the epoch afresh',
    }),
    plan: z.string().regex(/^[0-9a-f]{16}$/),
    p: count,
    P: z.number().int().min(1).max(MAX_PARTITIONS),
    epoch: count,
    delivered: count,
    rng: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1),
    queries: z.array(z.object({ delivered: count, tail: count }).strict()).max(10_000),
  })
  .strict();

/** Parses an untrusted state (an HTTP parameter, a file); the message says what is wrong. */
export function parseState(input: unknown, source: string): StreamState {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch {
      throw invalidOption(`${source} is not a resume state: not JSON`, {
        hint: 'Pass the .state member of the last sample received, unchanged.',
      });
    }
  }
  const result = stateSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw invalidOption(`${source} is not a resume state: ${issue.path.join('.') || 'value'}: ${issue.message}`, {
      hint: 'Pass the .state member of the last sample received, unchanged.',
    });
  }
  return result.data as StreamState;
}
