import { ClipstreamError } from '../core/errors.js';
import type { Candidate } from '../select/plan.js';
import type { CachedOutcome } from './cache.js';

export interface StripeHit {
  candidate: Candidate;
  outcome: Extract<CachedOutcome, { ok: true }>;
  /** Position in the stripe and pass (0 = first walk, ≥ 1 = repeats). */
  position: number;
  pass: number;
}

interface Attempt {
  position: number;
  pass: number;
  result: Promise<CachedOutcome>;
}

/**
 * One query's stripe in one partition: candidates `p, p + P, p + 2P, …` of the plan, tried in order; `next()`
 * gives the next success. Attempts run ahead of the consumer, but only as far as they can be needed: position k is
 * launched only while fewer than `needed` attempts are open, so if every open attempt succeeds the quota is met
 * and nothing after them was touched. The positions ever tried are therefore exactly the prefix that ends at the
 * quota-th success — the same on every run with the same outcomes, which is what lets a cache serve a second
 * epoch without a single request and makes the resume cursor exact.
 */
export class StripeReader {
  private readonly stripe: Candidate[];
  private readonly queue: Attempt[] = [];
  private nextPosition: number;
  private nextPass: number;
  private needed: number;
  private readonly successesInPass = new Map<number, number>();
  /** A pass walked from position 0 in this reader (a resumed first pass is not: its start was walked before). */
  private readonly firstWholePass: number;

  constructor(
    private readonly query: string,
    candidates: Candidate[],
    partition: { p: number; P: number },
    start: { cursor: number; pass: number; remaining: number },
    private readonly window: number,
    private readonly attempt: (c: Candidate) => Promise<CachedOutcome>,
  ) {
    this.stripe = [];
    for (let i = partition.p; i < candidates.length; i += partition.P) this.stripe.push(candidates[i]!);
    this.nextPosition = start.cursor;
    this.nextPass = start.pass;
    this.needed = start.remaining;
    this.firstWholePass = start.cursor === 0 ? start.pass : start.pass + 1;
    if (this.stripe.length > 0 && this.nextPosition > this.stripe.length) {
      throw new ClipstreamError('INVALID_OPTION', `the resume state's cursor ${start.cursor} is past the end of query ${query}'s stripe (${this.stripe.length} candidates)`);
    }
    this.fill();
  }

  get length(): number {
    return this.stripe.length;
  }

  async next(): Promise<StripeHit> {
    for (;;) {
      this.fill();
      const head = this.queue.shift();
      if (!head) throw this.exhausted();
      const outcome = await head.result;
      if (outcome.ok) {
        this.needed--;
        this.successesInPass.set(head.pass, (this.successesInPass.get(head.pass) ?? 0) + 1);
        this.fill();
        return { candidate: this.stripe[head.position]!, outcome, position: head.position, pass: head.pass };
      }
      // A whole walk over the stripe without one success: repeating would loop forever.
      if (head.position === this.stripe.length - 1 && head.pass >= this.firstWholePass && !this.successesInPass.get(head.pass)) {
        throw this.exhausted();
      }
    }
  }

  /** Waits for the attempts still open (after an abort they end quickly). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.queue.map((a) => a.result));
  }

  private fill(): void {
    if (this.stripe.length === 0) return;
    while (this.queue.length < Math.min(this.window, this.needed)) {
      if (this.nextPosition >= this.stripe.length) {
        this.nextPosition = 0;
        this.nextPass++;
      }
      const position = this.nextPosition++;
      this.queue.push({ position, pass: this.nextPass, result: this.attempt(this.stripe[position]!) });
    }
  }

  private exhausted(): ClipstreamError {
    return new ClipstreamError(
      'STREAM_EXHAUSTED',
      this.stripe.length === 0
        ? `query ${this.query} has no candidate in this partition, so it cannot deliver its quota`
        : `query ${this.query}: none of the ${this.stripe.length} candidates of this partition could be downloaded, so it cannot deliver its quota`,
      { hint: 'Lower min_similarity, raise oversample, or use fewer partitions; `clipstream plan` shows what is available.' },
    );
  }
}
