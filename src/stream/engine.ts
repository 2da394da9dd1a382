import { invalidOption } from '../core/errors.js';
import { checkPartition, quotas, type Partition } from './partition.js';
import type { ImageFormat } from '../core/types.js';
import { Random, stringSeed } from '../select/random.js';
import type { Plan } from '../select/plan.js';
import { streamedSampleJson } from '../sample/fields.js';
import { fetchCandidate, type CandidateContext } from './candidate.js';
import type { StreamState } from './state.js';
import { StreamStats } from './stats.js';
import { Stripe, StripeReader } from './stripe.js';

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
 * (seed, epoch, partition), each stripe's order reshuffled by epoch, a resume state after every sample. Memory is bounded by the window, not the plan.
 */
export function streamPartition(plan: Plan, o: PartitionStreamOptions): Stream {
  checkPartition(o.partition);
  const { index: p, count: P } = o.partition;
  const epoch = o.epoch ?? 0;
  if (!Number.isInteger(epoch) || epoch < 0) throw invalidOption(`Expected an epoch ≥ 0 but received ${epoch}`);
  const quota = quotas(plan, P);
  const queries = plan.header.queries;
  const fresh = (e: number): StreamState => ({
    v: 2,
    plan: plan.header.id,
    p,
    P,
    epoch: e,
    delivered: 0,
    rng: stringSeed(`${plan.header.seed}:${e}:${p}`),
    queries: queries.map(() => ({ delivered: 0, tail: 0 })),
  });
  let state: StreamState = o.state ? structuredClone(o.state) : fresh(epoch);
  checkState(state, plan, o.partition, epoch, quota, o.infinite ?? false);

  const stats = o.stats ?? new StreamStats();
  const abort = new AbortController();
  const window = o.window ?? defaultWindow(plan);
  const size = quota.reduce((a, b) => a + b, 0);
  // Epoch 0 walks the plan's order; a later epoch visits each stripe's head in an order of its own.
  const readersFor = (s: StreamState) => queries.map((q, qi) => new StripeReader(
    q.name,
    new Stripe(plan.candidates[qi]!, p, P, plan),
    quota[qi]!,
    s.queries[qi]!,
    s.epoch === 0 ? null : stringSeed(`${plan.header.seed}:${s.epoch}:${p}:${qi}`),
    window,
    (c) => fetchCandidate(c.url, o.context, stats, abort.signal),
  ));
  let readers = readersFor(state);
  let rand = new Random(state.rng);
  if (o.infinite && size === 0) throw invalidOption('an infinite stream needs at least one sample per partition: every query has fewer samples than partitions');
  let closed = false;

  function pick(): number {
    let total = 0;
    queries.forEach((q, qi) => {
      if (state.queries[qi]!.delivered < quota[qi]!) total += q.weight;
    });
    let r = rand.next() * total;
    let last = -1;
    for (const [qi, q] of queries.entries()) {
      if (state.queries[qi]!.delivered >= quota[qi]!) continue;
      last = qi;
      r -= q.weight;
      if (r < 0) return qi;
    }
    return last; // rounding at the very end of the range
  }

  async function* samples(): AsyncGenerator<StreamSample> {
    stats.activePartitions++;
    try {
      for (;;) {
        if (closed) return;
        if (state.delivered >= size) {
          if (!o.infinite) return;
          await Promise.all(readers.map((r) => r.settle()));
          state = fresh(state.epoch + 1);
          readers = readersFor(state);
          rand = new Random(state.rng);
        }
        const qi = pick();
        const hit = await readers[qi]!.next();
        if (closed) return;
        const qs = state.queries[qi]!;
        qs.delivered++;
        qs.tail = hit.tail;
        const n = state.delivered++;
        state.rng = rand.state;
        const { repeat } = hit;
        stats.delivered++;
        if (repeat) stats.repeats++;
        stats.bytes += hit.outcome.image.length;
        const key = `e${state.epoch}p${p}s${n}`;
        const c = hit.candidate;
        const out = hit.outcome;
        const json = streamedSampleJson({
          key, url: c.url, caption: c.caption, metadata: c.metadata, width: out.width, height: out.height, originalWidth: out.originalWidth,
          originalHeight: out.originalHeight, sha256: out.sha256, id: c.id, query: queries[qi]!.name, similarity: c.similarity, partition: p, epoch: state.epoch, repeat,
        });
        yield { key, image: hit.outcome.image, format: hit.outcome.format, caption: c.caption, json, query: queries[qi]!.name, repeat, state: structuredClone(state) };
      }
    } finally {
      stats.activePartitions--;
      await close();
    }
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    abort.abort();
    await Promise.all(readers.map((r) => r.settle()));
  }

  const iterator = samples();
  return {
    size,
    get remaining() {
      return o.infinite ? Infinity : size - state.delivered;
    },
    state: () => structuredClone(state),
    stats,
    close: async () => {
      await close();
      await iterator.return(undefined);
    },
    [Symbol.asyncIterator]: () => iterator,
  };
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

function checkState(state: StreamState, plan: Plan, partition: Partition, epoch: number, quota: number[], infinite: boolean): void {
  const refuse = (why: string) => invalidOption(`the resume state does not fit this stream: ${why}`, {
    hint: 'Resume with the state of the same stream, partition count and epoch, or start without one.',
  });
  if (state.plan !== plan.header.id) throw refuse(`it was made for plan ${state.plan}, this stream's plan is ${plan.header.id}`);
  if (state.P !== partition.count) throw refuse(`it was made for ${state.P} partitions, this run has ${partition.count}`);
  if (state.p !== partition.index) throw refuse(`it is partition ${state.p}'s, this is partition ${partition.index}`);
  // An infinite stream moves on by itself: its state may be at any later epoch.
  if (infinite ? state.epoch < epoch : state.epoch !== epoch) throw refuse(`it is for epoch ${state.epoch}, this is epoch ${epoch}`);
  if (state.queries.length !== quota.length) throw refuse(`it has ${state.queries.length} queries, the plan has ${quota.length}`);
  let sum = 0;
  state.queries.forEach((q, i) => {
    if (q.delivered > quota[i]!) throw refuse(`query ${i} delivered ${q.delivered} of a quota of ${quota[i]}`);
    sum += q.delivered;
  });
  if (sum !== state.delivered) throw refuse(`delivered ${state.delivered} is not the sum over its queries (${sum})`);
}
