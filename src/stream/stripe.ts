import { internalError, invalidOption, streamExhausted, type ClipstreamError } from '../core/errors.js';
import { formatReasons, hintForReasons } from '../core/failure-hints.js';
import { Permutation } from '../select/random.js';
import type { Candidate, CandidateList } from '../select/plan.js';
import type { CachedOutcome } from './cache.js';

const NO_STREAK = { head: null, firstTail: null, lastTail: -1 };

export interface StripeHit {
  candidate: Candidate;
  outcome: Extract<CachedOutcome, { ok: true }>;
  /** 0 for the walk's first pass over the stripe, ≥ 1 once it ran dry and is walked again. */
  pass: number;
  /**
   * This candidate was delivered before in this walk. Not the same as pass ≥ 1: in a shuffled epoch a repeat pass
   * may reach a candidate before its own head slot does, and then the head slot's delivery is the repeat.
   */
  repeat: boolean;
  /** Tail positions used so far: with the count delivered, all a resume state needs. */
  tail: number;
}

/**
 * Partition `p`'s stripe of one query's candidates: positions 0, 1, 2… are candidates p, p + P, p + 2P…, read from
 * the plan (on disk) as they are needed. The list may still be growing: while `pending` is set, a plan is being
 * resolved and more candidates will be appended.
 */
export class Stripe {
  /** `pending` has resolved (a plan may keep the settled promise: completion must not depend on its removal). */
  private settled = false;

  constructor(
    private readonly list: CandidateList,
    private readonly p: number,
    private readonly P: number,
    private readonly plan: { pending?: Promise<void> },
  ) {}

  /** Positions known so far (all of them once `complete`). */
  get known(): number {
    return this.list.length > this.p ? Math.floor((this.list.length - 1 - this.p) / this.P) + 1 : 0;
  }

  get complete(): boolean {
    return this.settled || this.plan.pending === undefined;
  }

  async at(position: number): Promise<Candidate> {
    const c = await this.list.at(this.p + position * this.P);
    if (!c) throw internalError(`no candidate at position ${position} of a stripe of ${this.known}`);
    return c;
  }

  /** Resolves when the plan is complete; rejects with the plan's error if its resolution failed. */
  async whenComplete(): Promise<void> {
    await this.plan.pending;
    this.settled = true;
  }
}

interface Attempt {
  position: number;
  pass: number;
  /** The candidate read from the plan, then its download (or the cache's answer). */
  result: Promise<{ candidate: Candidate; outcome: CachedOutcome }>;
}

/**
 * One query's stripe in one partition; `next()` gives the next sample. Delivery d < min(quota, length) is *slot*
 * d: head position `order[d]` (epoch 0: stripe order; later epochs: a permutation seeded by the epoch). When it
 * fails, the slot takes the next success of the *tail* — the positions after the head in stripe order, then the
 * whole stripe again, flagged as repeats — in slot order.
 *
 * Whatever the order and whatever finishes first, slot d's sample depends only on the outcomes, so the state
 * after a sample is two integers (delivered, tail used) and a resumed stream delivers exactly what the
 * interrupted one would have. The positions ever visited are the head plus the shortest tail prefix that makes up
 * for its failures, so every epoch delivers the same samples in its own order and a cache serves a later epoch
 * without a single request. Attempts run ahead of the consumer up to `window`: head slots in order, and one tail
 * position per failure as soon as the failure is known (never more: nothing is downloaded that is not needed).
 *
 * A fresh epoch-0 walk starts on the candidates known so far (the first block of a plan being resolved); an
 * epoch's order and a resumed walk need the head, so they wait until the stripe holds the quota or is complete.
 */
export class StripeReader {
  private readonly heads: Attempt[] = [];
  private readonly tails: Attempt[] = [];
  /** min(quota, stripe length), once known. */
  private headLength: number | null = null;
  /** A later epoch's head order: slot → position (and back), computed, not stored (a head may hold millions). */
  private order: Permutation | null = null;
  /** Head slots launched; null until the walk can start (a resumed or reordered walk needs the head). */
  private headLaunched: number | null;
  private delivered: number;
  private tailUsed: number;
  private tailLaunched: number;
  /**
   * Tail positions known to be needed and not launched yet: one per failure seen, plus the deliveries past the head
   * (a stripe shorter than the quota), minus the tail positions launched. Kept by hand: a failure is known when its
   * download ends, in a callback, and fill() must see it at once.
   */
  private owed = 0;
  /**
   * Failures since the last success (counted once the stripe is complete): the current slot's head position, and a
   * run of consecutive tail indices, which are consecutive positions modulo the stripe's length — so the distinct
   * positions that failed are counted without a set, and all of them failing means nothing can succeed.
   */
  private streak: { head: number | null; firstTail: number | null; lastTail: number } = NO_STREAK;
  /** Failure reason → count, for the message when nothing can succeed. Bounded: reasons are stable codes. */
  private readonly reasons = new Map<string, number>();
  private closed = false;
  /** Whether the resume state fits the stripe was decided (see startFits), and how. */
  private startChecked = false;
  private startError: ClipstreamError | null = null;

  constructor(
    private readonly query: string,
    private readonly stripe: Stripe,
    private readonly quota: number,
    private readonly start: { delivered: number; tail: number },
    /** Seeds the head's order (null: stripe order). */
    private readonly shuffleSeed: number | null,
    private readonly window: number,
    private readonly attempt: (c: Candidate) => Promise<CachedOutcome>,
  ) {
    if (start.delivered > quota) throw this.unfit(`more than the quota delivered`);
    if (this.startFits() === false) throw this.startError!;
    this.delivered = start.delivered;
    this.tailUsed = this.tailLaunched = start.tail;
    this.headLaunched = start.delivered === 0 && shuffleSeed === null ? 0 : null;
    this.determineHead();
    if (!stripe.complete) {
      stripe.whenComplete().then(
        () => this.fill(),
        () => {}, // next() sees the plan's error
      );
    }
    this.fill();
  }

  /**
   * The current slot's head failed and it is being filled from the tail. Derived: every head slot consumed (launched
   * and taken off `heads`) but not delivered is the current one (slots are delivered in order).
   */
  private get inChain(): boolean {
    return this.headLaunched !== null && this.headLaunched - this.heads.length > this.delivered;
  }

  async next(): Promise<StripeHit> {
    if (this.delivered >= this.quota) throw internalError(`query ${this.query}: read past its quota`);
    // A resume state is checked against the stripe before anything is delivered from it.
    for (let fits = this.startFits(); fits !== true; fits = this.startFits()) {
      if (fits === false) throw this.startError!;
      await this.waitForCandidates();
    }
    for (;;) {
      if (this.stripe.complete && this.stripe.known === 0) throw this.exhausted();
      this.determineHead();
      if (!this.inChain) {
        const headSlot = this.currentSlotIsHead();
        if (headSlot === null) {
          await this.waitForCandidates();
          continue;
        }
        if (headSlot) {
          if (this.heads.length === 0) {
            if (!this.canLaunchHead()) {
              await this.waitForCandidates();
              continue;
            }
            this.launchHead();
          }
          const slot = this.heads.shift()!;
          const { candidate, outcome } = await slot.result;
          this.fill();
          if (outcome.ok) return this.hit(slot, candidate, outcome);
          this.failed(slot.position, null); // inChain from now on: the slot was consumed, not delivered
        }
      }
      if (this.tails.length === 0) {
        const next = this.tailAt(this.tailLaunched);
        if (!next) {
          await this.waitForCandidates();
          continue;
        }
        this.launchTail(next); // the window may be full of ready samples: one more is fine
      }
      const tail = this.tails.shift()!;
      const { candidate, outcome } = await tail.result;
      const tailIndex = this.tailUsed++;
      this.fill();
      if (outcome.ok) return this.hit(tail, candidate, outcome); // delivered: the chain ends
      this.failed(tail.position, tailIndex);
    }
  }

  /** Stops launching and waits for the attempts still open (after an abort they end quickly). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.heads, ...this.tails].map((a) => a.result));
  }

  /** Whether delivery `delivered` is a head slot; null while that depends on candidates not known yet. */
  private currentSlotIsHead(): boolean | null {
    if (this.headLength !== null) return this.delivered < this.headLength;
    // A fresh walk in stripe order before the head is known: a known position is a head slot.
    return this.headLaunched !== null && this.delivered < this.stripe.known ? true : null;
  }

  private async waitForCandidates(): Promise<void> {
    await this.stripe.whenComplete();
    this.fill();
  }

  /** Once the stripe holds the quota (or is complete), the head is known: its order and what it cannot cover. */
  private determineHead(): void {
    if (this.headLength !== null) return;
    const { known, complete } = this.stripe;
    if (known < this.quota && !complete) return;
    this.headLength = Math.min(this.quota, known);
    if (this.shuffleSeed !== null) this.order = new Permutation(this.headLength, this.shuffleSeed);
    this.headLaunched ??= Math.min(this.delivered, this.headLength);
    // Deliveries past the head (a stripe shorter than the quota) come from the tail: repeats.
    this.owed += Math.max(0, this.quota - Math.max(this.headLength, this.delivered));
  }

  private canLaunchHead(): boolean {
    if (this.headLaunched === null) return false;
    if (this.headLength !== null) return this.headLaunched < this.headLength;
    return this.headLaunched < Math.min(this.quota, this.stripe.known); // a fresh walk in stripe order
  }

  /** Tail index k: the positions after the head (the first walk), then whole passes over the stripe (repeats). */
  private tailAt(k: number): { position: number; pass: number } | null {
    if (this.headLength === null) return null;
    const known = this.stripe.known;
    if (this.headLength + k < known) return { position: this.headLength + k, pass: 0 };
    if (!this.stripe.complete || known === 0) return null;
    const r = k - (known - this.headLength);
    return { position: r % known, pass: 1 + Math.floor(r / known) };
  }

  private hit(a: Attempt, candidate: Candidate, outcome: Extract<CachedOutcome, { ok: true }>): StripeHit {
    const repeat = this.isRepeat(a);
    this.delivered++;
    this.streak = NO_STREAK;
    return { candidate, outcome, pass: a.pass, repeat, tail: this.tailUsed };
  }

  /**
   * Whether delivery `delivered` repeats an earlier one, from the walk's position alone (delivered, tail used), so
   * that a resumed walk flags as the interrupted one would. It assumes that a position delivered once would be
   * again: a url that failed and then succeeded on a later visit may be flagged as a repeat of itself.
   */
  private isRepeat(a: Attempt): boolean {
    const headLength = this.headLength;
    // (a head slot delivered before the head is known: a fresh walk on a growing stripe, which has no repeat pass)
    if (headLength === null) return false;
    if (a.pass === 0) {
      // A head slot: a repeat if an earlier replacement took its candidate from the first repeat pass (tail index
      // known - headLength + position, never reached while the stripe grows). Past the head, a first visit: its
      // tail index is position - headLength, always below that.
      return this.stripe.known - headLength + a.position < this.tailUsed;
    }
    if (a.pass > 1 || a.position >= headLength) return true;
    const slot = this.order ? this.order.slotOf(a.position) : a.position;
    return slot < this.delivered; // its head slot came first (the current slot's own retry does not)
  }

  /** A failure of the current slot: its head position (`tailIndex` null) or tail index `tailIndex`. */
  private failed(position: number, tailIndex: number | null): void {
    if (!this.stripe.complete) return; // more candidates are coming
    const known = this.stripe.known; // final once the stripe is complete
    const s = { ...this.streak };
    if (tailIndex === null) s.head = position;
    else {
      s.firstTail ??= tailIndex;
      s.lastTail = tailIndex;
    }
    this.streak = s;
    const run = s.firstTail === null ? 0 : Math.min(known, s.lastTail - s.firstTail + 1);
    // Tail index k is position (headLength + k) mod known (tailAt).
    const runStart = s.firstTail === null ? 0 : (this.headLength! + s.firstTail) % known;
    const headInRun = s.head !== null && run > 0 && (((s.head - runStart) % known) + known) % known < run;
    if (run + (s.head !== null && !headInRun ? 1 : 0) >= known) throw this.exhausted();
  }

  private fill(): void {
    if (this.startFits() !== true) return; // next() waits for it, or throws
    this.determineHead();
    // Replacements first, so that a failed slot's sample is on its way before the consumer reaches it; repeats
    // (past the first walk) last, so that a url is not downloaded twice at once.
    while (!this.closed && this.heads.length + this.tails.length < this.window) {
      const headLeft = this.canLaunchHead();
      const tail = this.owed > 0 ? this.tailAt(this.tailLaunched) : null;
      if (tail && (tail.pass === 0 || !headLeft)) this.launchTail(tail);
      else if (headLeft) this.launchHead();
      else break;
    }
  }

  private launchHead(): void {
    const slot = this.headLaunched!;
    this.headLaunched = slot + 1;
    this.heads.push(this.launch(this.order ? this.order.at(slot) : slot, 0));
  }

  private launchTail(at: { position: number; pass: number }): void {
    this.tailLaunched++;
    if (this.owed > 0) this.owed--;
    this.tails.push(this.launch(at.position, at.pass));
  }

  private launch(position: number, pass: number): Attempt {
    const result = this.stripe
      .at(position)
      .then(async (candidate) => ({ candidate, outcome: await this.attempt(candidate) }));
    result.then(
      ({ outcome }) => {
        if (outcome.ok || this.closed) return;
        if (this.reasons.size < 50 || this.reasons.has(outcome.reason))
          this.reasons.set(outcome.reason, (this.reasons.get(outcome.reason) ?? 0) + 1);
        this.owed++;
        this.fill();
      },
      () => {}, // next() sees the rejection
    );
    return { position, pass, result };
  }

  /**
   * Whether the resume state (d delivered, t tail positions used) can come from a walk over this stripe (K
   * positions, head H = min(quota, K)); null while that depends on candidates not known yet. A delivery past the
   * head takes a tail position, so t ≥ d − H. A slot takes at most K (K consecutive tail positions are K distinct
   * ones, and K distinct failures since the last success exhaust the stripe); failures are not counted while the
   * plan grows, but those are first-pass tail positions, K − H at most. So t ≤ d·K + K − H, and t = 0 before any
   * delivery. A tail past that (2^53 − 1 from a tampered state) would flag every sample as a repeat.
   */
  private startFits(): boolean | null {
    if (this.startChecked) return this.startError === null;
    const { delivered: d, tail: t } = this.start;
    const K = this.stripe.known;
    const H = Math.min(this.quota, K);
    const most = d === 0 ? 0 : d * K + K - H;
    if (!this.stripe.complete) {
      // Both bounds only widen as candidates arrive: within the first pass over the positions known, t fits.
      if (d === 0 ? t !== 0 : t < d - H || t > K - H)
        return d === 0 ? this.refuse(this.unfit('no delivery uses no tail position')) : null;
      this.startChecked = true;
      return true;
    }
    this.startChecked = true;
    if (t < d - H) return this.refuse(this.unfit(`${d - H} deliveries past the head need as many tail positions`));
    if (t > most) return this.refuse(this.unfit(`a walk that delivered ${d} uses at most ${most} tail positions`));
    return true;
  }

  private refuse(error: ClipstreamError): false {
    this.startChecked = true;
    this.startError = error;
    return false;
  }

  private unfit(why: string): ClipstreamError {
    const { delivered, tail } = this.start;
    return invalidOption(
      `the resume state (delivered ${delivered}, tail ${tail}) does not fit query ${this.query}'s stripe (${this.stripe.known} candidates, quota ${this.quota}): ${why}`,
      { hint: 'Resume with the state of the last sample received, unchanged, or start without one.' },
    );
  }

  private exhausted(): ClipstreamError {
    if (this.stripe.known === 0) {
      return streamExhausted(`query ${this.query} has no candidate in this partition, so it cannot deliver its quota`, {
        hint: 'Lower min_similarity, raise oversample, or use fewer partitions; `clipstream plan` shows what is available.',
      });
    }
    return streamExhausted(
      `query ${this.query}: none of the ${this.stripe.known} candidates of this partition could be downloaded (${formatReasons(this.reasons)}), so it cannot deliver its quota`,
      {
        hint:
          hintForReasons(this.reasons, 'spec') ??
          'Lower min_similarity, raise oversample, or use fewer partitions; `clipstream plan` shows what is available.',
      },
    );
  }
}
