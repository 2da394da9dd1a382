import { invalidOption } from '../core/errors.js';
import { checkPartition, quotas, type Partition } from './partition.js';
import type { ImageFormat } from '../core/types.js';
import { Random, stringSeed } from '../select/random.js';
import type { Plan } from '../select/plan.js';
import { streamedSampleJson } from '../sample/fields.js';
import { fetchCandidate, type CandidateContext } from './candidate.js';
import type { StreamState } from './state.js';
import { StreamStats } from './stats.js';
import { Stripe, StripeReader, type StripeHit } from './stripe.js';

export interface StreamSample {
  /** `e{epoch}p{partition}s{n}`: unique in the run, no dots (webdataset groups members by it). */
  key: string;
  image: Buffer;
  format: ImageFormat;
  caption: string | null;
  /** img2dataset's sample json + id, query, similarity, partition, epoch, repeat and the index metadata. */
  json: Record<string, unknown>;
  query: string;
  repeat: boolean;
  /** The resume state after this sample. */
  state: StreamState;
}

export interface PartitionStreamOptions {
  partition: Partition;
  epoch?: number;
  /** Resume after this state (it must come from the same plan and partition). */
  state?: StreamState;
  context: CandidateContext;
  /** Shared by the partitions of one stream; a fresh one by default. */
  stats?: StreamStats;
  /** Attempts open or ready ahead of the consumer, per query. Default: `defaultWindow(plan)`. */
  window?: number;
  /**
   * Never end: after an epoch's quotas, go on with the next epoch (new interleaving, keys `e{epoch+1}…`), so the
   * queries keep their weights for as long as training runs. The state carries the current epoch.
   */
  infinite?: boolean;
}

export interface Stream extends AsyncIterable<StreamSample> {
  /** Samples this partition delivers in the epoch. */
  readonly size: number;
  /** Samples still to come (size minus what the state had delivered minus what was yielded). */
  readonly remaining: number;
  state(): StreamState;
  readonly stats: StreamStats;
  /** Stops: open downloads are aborted; resolves when they have ended. */
  close(): Promise<void>;
}

/**
 * One partition of a plan as a stream of resized samples (docs/streaming.md): exactly `floor(count / P)` samples per
 * query, failures replaced from the partition's own stripe, queries interleaved by weight with a PRNG seeded by
 * (seed, epoch, partition), each stripe's order reshuffled by epoch, a resume state after every sample. Memory is
 * bounded by the window of each stripe reader: candidates are read from the plan's folder as they are needed.
 */
export function streamPartition(plan: Plan, o: PartitionStreamOptions): Stream {
  checkPartition(o.partition);
  const epoch = o.epoch ?? 0;
  if (!Number.isInteger(epoch) || epoch < 0) throw invalidOption(`Expected an epoch ≥ 0 but received ${epoch}`);
  const quota = quotas(plan, o.partition.count);
  const state = o.state ? structuredClone(o.state) : freshState(plan, o.partition, epoch);
  checkState(state, plan, o.partition, epoch, quota, o.infinite ?? false);
  if (o.infinite && sum(quota) === 0)
    throw invalidOption(
      'an infinite stream needs at least one sample per partition: every query has fewer samples than partitions',
    );
  return new PartitionStream(plan, o, quota, state);
}

/** The state before an epoch's first sample. */
function freshState(plan: Plan, { index: p, count: P }: Partition, epoch: number): StreamState {
  return {
    v: 2,
    plan: plan.header.id,
    p,
    P,
    epoch,
    delivered: 0,
    rng: stringSeed(`${plan.header.seed}:${epoch}:${p}`),
    queries: plan.header.queries.map(() => ({ delivered: 0, tail: 0 })),
  };
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * The stream of one partition: the walk (one StripeReader per query), the interleaving, the state and the epoch
 * roll-over. Invariant, checked when a state comes from outside (checkState): `state.delivered` is the sum of the
 * queries' `delivered`; it is recomputed, never counted apart.
 */
class PartitionStream implements Stream {
  readonly size: number;
  readonly stats: StreamStats;
  private readonly abort = new AbortController();
  private readonly window: number;
  private readers: StripeReader[];
  private rand: Random;
  private closed = false;
  private readonly iterator: AsyncGenerator<StreamSample>;

  constructor(
    private readonly plan: Plan,
    private readonly o: PartitionStreamOptions,
    private readonly quota: number[],
    private current: StreamState,
  ) {
    this.size = sum(quota);
    this.stats = o.stats ?? new StreamStats();
    this.window = o.window ?? defaultWindow(plan);
    this.readers = this.readersFor(this.current);
    this.rand = new Random(this.current.rng);
    this.iterator = this.samples();
  }

  get remaining(): number {
    return this.o.infinite ? Infinity : this.size - this.current.delivered;
  }

  state(): StreamState {
    return structuredClone(this.current);
  }

  [Symbol.asyncIterator](): AsyncGenerator<StreamSample> {
    return this.iterator;
  }

  async close(): Promise<void> {
    await this.stop();
    await this.iterator.return(undefined);
  }

  /** Epoch 0 walks the plan's order; a later epoch visits each stripe's head in an order of its own. */
  private readersFor(s: StreamState): StripeReader[] {
    const { index: p, count: P } = this.o.partition;
    const seed = this.plan.header.seed;
    return this.plan.header.queries.map(
      (q, qi) =>
        new StripeReader(
          q.name,
          new Stripe(this.plan.candidates[qi]!, p, P, this.plan),
          this.quota[qi]!,
          s.queries[qi]!,
          s.epoch === 0 ? null : stringSeed(`${seed}:${s.epoch}:${p}:${qi}`),
          this.window,
          (c) => fetchCandidate(c.url, this.o.context, this.stats, this.abort.signal),
        ),
    );
  }

  private async *samples(): AsyncGenerator<StreamSample> {
    this.stats.activePartitions++;
    try {
      while (!this.closed) {
        if (this.current.delivered >= this.size) {
          if (!this.o.infinite) return;
          await this.nextEpoch();
        }
        const qi = this.pick();
        const hit = await this.readers[qi]!.next();
        if (this.closed) return;
        yield this.deliver(qi, hit);
      }
    } finally {
      this.stats.activePartitions--;
      await this.stop();
    }
  }

  /** An infinite stream's next epoch: new interleaving, new head orders, keys `e{epoch+1}…`. */
  private async nextEpoch(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.close()));
    this.current = freshState(this.plan, this.o.partition, this.current.epoch + 1);
    this.readers = this.readersFor(this.current);
    this.rand = new Random(this.current.rng);
  }

  /** The next query, by weight among those still short of their quota. */
  private pick(): number {
    const queries = this.plan.header.queries;
    const open = (qi: number) => this.current.queries[qi]!.delivered < this.quota[qi]!;
    let r = this.rand.next() * sum(queries.map((q, qi) => (open(qi) ? q.weight : 0)));
    let last = -1;
    for (const [qi, q] of queries.entries()) {
      if (!open(qi)) continue;
      last = qi;
      r -= q.weight;
      if (r < 0) return qi;
    }
    return last; // rounding at the very end of the range
  }

  /** Records the hit in the state and the stats, and makes it a sample. */
  private deliver(qi: number, hit: StripeHit): StreamSample {
    const state = this.current;
    const n = state.delivered;
    state.queries[qi] = { delivered: state.queries[qi]!.delivered + 1, tail: hit.tail };
    state.delivered = sum(state.queries.map((q) => q.delivered));
    state.rng = this.rand.state;
    this.stats.delivered++;
    if (hit.repeat) this.stats.repeats++;
    this.stats.bytes += hit.outcome.image.length;
    const key = `e${state.epoch}p${state.p}s${n}`;
    const c = hit.candidate;
    const out = hit.outcome;
    const query = this.plan.header.queries[qi]!.name;
    const json = streamedSampleJson({
      key,
      url: c.url,
      caption: c.caption,
      metadata: c.metadata,
      width: out.width,
      height: out.height,
      originalWidth: out.originalWidth,
      originalHeight: out.originalHeight,
      sha256: out.sha256,
      id: c.id,
      query,
      similarity: c.similarity,
      partition: state.p,
      epoch: state.epoch,
      repeat: hit.repeat,
    });
    return {
      key,
      image: out.image,
      format: out.format,
      caption: c.caption,
      json,
      query,
      repeat: hit.repeat,
      state: structuredClone(state),
    };
  }

  /** Stops the walk: open downloads are aborted; resolves when they have ended. */
  private async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    await Promise.all(this.readers.map((r) => r.close()));
  }
}

/** Bytes of ready samples a partition may hold ahead of its consumer, over all its queries. */
const READY_BYTES = 256 * 1024 * 1024;
const BYTES_PER_PIXEL: Record<ImageFormat, number> = { npy: 3, png: 2, jpg: 0.5, webp: 0.5 };

/**
 * Attempts open or ready ahead of the consumer, per query. Samples leave in stripe order, so one slow download
 * holds back the ones behind it: the window is wider than the concurrency so that downloading goes on behind a slow
 * head (bench/stream, stream ÷ download rate: window = concurrency 0.43, 4 × 0.91–0.93, 8 × 0.98). Ready samples
 * are resized ones: ~30 KB of 256 px jpg, but 196 KB of 256 px npy, so the window also keeps within READY_BYTES.
 */
export function defaultWindow(plan: Plan): number {
  const { size, resize_mode, encode_format } = plan.header.image;
  // What one resized sample may weigh: raw pixels for npy, ~2 bytes a pixel for a lossless png of a photo, ~0.5
  // for q95 jpg or webp; no resize: unknown sizes.
  const side = resize_mode === 'no' ? Math.max(size, 1024) : resize_mode === 'keep_ratio' ? 2 * size : size;
  const sampleBytes = side * size * BYTES_PER_PIXEL[encode_format];
  const byBytes = Math.floor(READY_BYTES / plan.header.queries.length / sampleBytes);
  return Math.max(16, Math.min(4096, 8 * plan.header.fetch.concurrency, byBytes));
}

function checkState(
  state: StreamState,
  plan: Plan,
  partition: Partition,
  epoch: number,
  quota: number[],
  infinite: boolean,
): void {
  const refuse = (why: string) =>
    invalidOption(`the resume state does not fit this stream: ${why}`, {
      hint: 'Resume with the state of the same stream, partition count and epoch, or start without one.',
    });
  if (state.plan !== plan.header.id)
    throw refuse(`it was made for plan ${state.plan}, this stream's plan is ${plan.header.id}`);
  if (state.P !== partition.count)
    throw refuse(`it was made for ${state.P} partitions, this run has ${partition.count}`);
  if (state.p !== partition.index) throw refuse(`it is partition ${state.p}'s, this is partition ${partition.index}`);
  // An infinite stream moves on by itself: its state may be at any later epoch.
  if (infinite ? state.epoch < epoch : state.epoch !== epoch)
    throw refuse(`it is for epoch ${state.epoch}, this is epoch ${epoch}`);
  if (state.queries.length !== quota.length)
    throw refuse(`it has ${state.queries.length} queries, the plan has ${quota.length}`);
  let sum = 0;
  state.queries.forEach((q, i) => {
    if (q.delivered > quota[i]!) throw refuse(`query ${i} delivered ${q.delivered} of a quota of ${quota[i]}`);
    sum += q.delivered;
  });
  if (sum !== state.delivered) throw refuse(`delivered ${state.delivered} is not the sum over its queries (${sum})`);
}
