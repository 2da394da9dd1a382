import { loadPlan } from '../select/plan-file.js';
import type { Plan } from '../select/plan.js';
import { openSampleCache } from './cache.js';
import { imageOptionsOfSpec } from '../image/index.js';
import { defaultImageSlots } from '../sample/fetch-image.js';
import { cacheNamespace, createFetcherFor, type CandidateContext } from './candidate.js';
import { streamPartition, type Stream } from './engine.js';
import type { Partition } from './partition.js';
import type { StreamState } from './state.js';
import type { StreamStats } from './stats.js';

/** The fetcher, image options, image slots and cache a plan asks for; close it when every stream is done. */
export async function createStreamContext(plan: Plan): Promise<CandidateContext & { close(): Promise<void> }> {
  const image = imageOptionsOfSpec(plan.header.image);
  const { dir, max_bytes } = plan.header.cache;
  const cache = dir ? await openSampleCache({ dir, maxBytes: max_bytes, namespace: cacheNamespace(image) }) : null;
  const fetcher = createFetcherFor(plan.header.fetch);
  return {
    fetcher,
    image,
    imageSlots: defaultImageSlots(),
    cache,
    close: async () => {
      await fetcher.close();
      await cache?.close();
    },
  };
}

export interface OpenStreamOptions {
  /** Default: the whole stream as one partition. */
  partition?: Partition;
  epoch?: number;
  state?: StreamState;
  stats?: StreamStats;
  /** Go on epoch after epoch, never ending (see PartitionStreamOptions.infinite). */
  infinite?: boolean;
}

/**
 * The TS API: a spec file, a plan folder or a resolved plan → one partition as an AsyncIterable of samples, with
 * `state()` to resume. No server involved; `close()` (or finishing the iteration) releases everything.
 */
export async function openStream(specOrPlan: string | Plan, o: OpenStreamOptions = {}): Promise<Stream> {
  const plan = typeof specOrPlan === 'string' ? await loadPlan(specOrPlan) : specOrPlan;
  // A plan this call loaded is this stream's to close (a spec's: its temporary folder).
  const ownPlan = typeof specOrPlan === 'string' ? plan : undefined;
  const context = await createStreamContext(plan).catch(async (err: unknown) => {
    await ownPlan?.close?.();
    throw err;
  });
  let stream: Stream;
  try {
    stream = streamPartition(plan, {
      partition: o.partition ?? { index: 0, count: 1 },
      epoch: o.epoch,
      state: o.state,
      stats: o.stats,
      infinite: o.infinite,
      context,
    });
  } catch (err) {
    await context.close();
    await ownPlan?.close?.();
    throw err;
  }
  const iterator = stream[Symbol.asyncIterator]();
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await stream.close();
    await context.close();
    await ownPlan?.close?.();
  };
  return {
    get size() {
      return stream.size;
    },
    get remaining() {
      return stream.remaining;
    },
    state: () => stream.state(),
    stats: stream.stats,
    close: release,
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        const r = await iterator.next().catch(async (err: unknown) => {
          await release();
          throw err;
        });
        if (r.done) await release();
        return r;
      },
      return: async () => {
        await release();
        return { done: true as const, value: undefined };
      },
    }),
  };
}
