import { ClipstreamError } from '../core/errors.js';
import { Random } from '../select/random.js';
import type { Candidate } from '../select/plan.js';
import type { CachedOutcome } from './cache.js';

export interface StripeHit {
  candidate: Candidate;
  outcome: Extract<CachedOutcome, { ok: true }>;
  /** 0 for a first delivery, ≥ 1 for a repeat (the stripe ran dry and is walked again). */
  pass: number;
  /** Tail positions used so far: with the count delivered, all a resume state needs. */
  tail: number;
}

interface Attempt {
  position: number;
  pass: number;
  result: Promise<CachedOutcome>;
}

/**
 * One query's stripe in one partition: candidates `p, p + P, p + 2P, …` of the plan; `next()` gives the next
 * sample. Delivery d < min(quota, length) is *slot* d: head position `order[d]` (epoch 0: stripe order, later
 * epochs: a permutation seeded by the epoch). When it fails, the slot takes the next success of the *tail* — the
 * positions after the head in stripe order, then the whole stripe again, flagged as repeats — in slot order.
 *
 * Whatever the order and whatever finishes first, slot d's sample depends only on the outcomes, so the state
 * after a sample is two integers (delivered, tail used) and a resumed stream delivers exactly what the
 * interrupted one would have. The positions ever visited are the head plus the shortest tail prefix that makes up
 * for its failures, so every epoch delivers the same samples in its own order and a cache serves a later epoch
 * without a single request. Attempts run ahead of the consumer up to `window`: head slots in order, and one tail
 * position per failure as soon as the failure is known (never more: nothing is downloaded that is not needed).
 */
export class StripeReader {
  private readonly stripe: Candidate[];
  private readonly headLength: number;
  private readonly order: Uint32Array | null;
  private readonly heads: Attempt[] = [];
  private readonly tails: Attempt[] = [];
  private delivered: number;
  private headLaunched: number;
  private tailUsed: number;
  private tailLaunched: number;
  /** Tail positions known to be needed and not launched yet: one per failure seen, plus deliveries past the head. */
  private owed: number;
  /** Visits since the last success, in delivery order: a whole stripe's worth means nothing can succeed. */
  private failuresInARow = 0;
  private closed = false;

  constructor(
    private readonly query: string,
    candidates: Candidate[],
    partition: { p: number; P: number },
    private readonly quota: number,
    start: { delivered: number; tail: number },
    /** Seeds the head's order (null: stripe order). */
    shuffleSeed: number | null,
    private readonly window: number,
    private readonly attempt: (c: Candidate) => Promise<CachedOutcome>,
  ) {
    this.stripe = [];
    for (let i = partition.p; i < candidates.length; i += partition.P) this.stripe.push(candidates[i]!);
    this.headLength = Math.min(quota, this.stripe.length);
    this.order = shuffleSeed === null ? null : permutation(this.headLength, shuffleSeed);
    if (start.delivered > quota || (this.stripe.length === 0 && start.tail > 0)) {
      throw new ClipstreamError('INVALID_OPTION', `the resume state (delivered ${start.delivered}, tail ${start.tail}) does not fit query ${query}'s stripe (${this.stripe.length} candidates, quota ${quota})`);
    }
    this.delivered = start.delivered;
    this.headLaunched = Math.min(start.delivered, this.headLength);
    this.tailUsed = this.tailLaunched = start.tail;
    this.owed = Math.max(0, quota - start.delivered - (this.headLength - this.headLaunched));
    this.fill();
  }

  get length(): number {
    return this.stripe.length;
  }

  async next(): Promise<StripeHit> {
    if (this.delivered >= this.quota) throw new ClipstreamError('INTERNAL', `query ${this.query}: read past its quota`);
    if (this.stripe.length === 0) throw this.exhausted();
    if (this.delivered < this.headLength) {
      if (this.heads.length === 0) this.launchHead();
      const slot = this.heads.shift()!;
      const outcome = await slot.result;
      this.fill();
      if (outcome.ok) return this.hit(slot, outcome);
      this.failed();
    }
    for (;;) {
      if (this.tails.length === 0) this.launchTail(); // the window is full of ready samples: one more is fine
      const next = this.tails.shift()!;
      const outcome = await next.result;
      this.tailUsed++;
      this.fill();
      if (outcome.ok) return this.hit(next, outcome);
      this.failed();
    }
  }

  /** Stops launching and waits for the attempts still open (after an abort they end quickly). */
  async settle(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.heads, ...this.tails].map((a) => a.result));
  }

  private hit(a: Attempt, outcome: Extract<CachedOutcome, { ok: true }>): StripeHit {
    this.delivered++;
    this.failuresInARow = 0;
    return { candidate: this.stripe[a.position]!, outcome, pass: a.pass, tail: this.tailUsed };
  }

  private failed(): void {
    if (++this.failuresInARow >= this.stripe.length) throw this.exhausted();
  }

  private fill(): void {
    if (this.stripe.length === 0) return;
    // Replacements first, so that a failed slot's sample is on its way before the consumer reaches it; repeats
    // (past the first walk) last, so that a url is not downloaded twice at once.
    const firstWalk = this.stripe.length - this.headLength;
    while (!this.closed && this.heads.length + this.tails.length < this.window) {
      const headLeft = this.headLaunched < this.headLength;
      if (this.owed > 0 && (this.tailLaunched < firstWalk || !headLeft)) this.launchTail();
      else if (headLeft) this.launchHead();
      else break;
    }
  }

  private launchHead(): void {
    const slot = this.headLaunched++;
    this.heads.push(this.launch(this.order ? this.order[slot]! : slot, 0));
  }

  private launchTail(): void {
    const k = this.tailLaunched++;
    if (this.owed > 0) this.owed--;
    // Tail index k: the positions after the head (the first walk), then whole passes over the stripe (repeats).
    const first = this.stripe.length - this.headLength;
    if (k < first) this.tails.push(this.launch(this.headLength + k, 0));
    else this.tails.push(this.launch((k - first) % this.stripe.length, 1 + Math.floor((k - first) / this.stripe.length)));
  }

  private launch(position: number, pass: number): Attempt {
    const result = this.attempt(this.stripe[position]!);
    result.then(
      (outcome) => {
        if (outcome.ok || this.closed) return;
        this.owed++;
        this.fill();
      },
      () => {}, // next() sees the rejection
    );
    return { position, pass, result };
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

/** A seeded permutation of 0…n-1 (Fisher–Yates): 4 bytes per head position. */
function permutation(n: number, seed: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const rand = new Random(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand.next() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}
