import type { ImageFormat } from '../core/types.js';
import type { Plan } from '../select/plan.js';
import type { StreamSample } from '../stream/engine.js';
import { quotas } from '../stream/partition.js';
import type { StreamProgressSnapshot, RecentSample as WireRecentSample } from './wire.js';

/** A recent sample as the server keeps it: its format narrowed to what a browser shows. */
type RecentSample = WireRecentSample & { format: ImageFormat };

interface PartitionProgress {
  P: number;
  p: number;
  epoch: number;
  /** Per query (plan order): delivered in the epoch, from the partition's resume state. */
  delivered: number[];
}

/** Latest samples kept with their images (the dashboard's strip), and at most this many bytes of them. */
const RECENT_SAMPLES = 24;
const RECENT_BYTES = 8 * 1024 * 1024;
/** Partitions remembered (a client may open up to 10⁶); past it, the least recently active is forgotten. */
const TRACKED_PARTITIONS = 4096;
/** Partitions listed in one snapshot, by partition index (the totals cover them all). */
const LISTED_PARTITIONS = 64;

/**
 * What the dashboard shows of a served stream beyond its counters: per partition and query, delivered against the
 * quota (read from each sample's resume state, so a resumed partition counts what it had delivered before), and
 * the latest samples with their images.
 */
export class StreamProgress {
  private readonly partitions = new Map<string, PartitionProgress>();
  private readonly recent: { sample: RecentSample; image: Buffer }[] = [];
  private recentBytes = 0;
  private lastP = 1;

  record(sample: StreamSample): void {
    const { p, P, epoch, queries } = sample.state;
    const key = `${P}/${p}`;
    this.partitions.delete(key); // re-inserted last: the map's order is least recently active first
    this.partitions.set(key, { P, p, epoch, delivered: queries.map((q) => q.delivered) });
    if (this.partitions.size > TRACKED_PARTITIONS) this.partitions.delete(this.partitions.keys().next().value!);
    this.lastP = P;
    this.keepRecent(sample);
  }

  private keepRecent(s: StreamSample): void {
    if (s.format === 'npy' || s.image.length > RECENT_BYTES / 4) return; // a browser cannot show npy; huge pngs would crowd out the rest
    const json = s.json;
    const sample: RecentSample = {
      key: s.key,
      query: s.query,
      id: typeof json.id === 'number' ? json.id : null,
      similarity: typeof json.similarity === 'number' ? json.similarity : null,
      caption: s.caption,
      partition: s.state.p,
      repeat: s.repeat,
      format: s.format,
    };
    this.recent.push({ sample, image: s.image });
    this.recentBytes += s.image.length;
    while (this.recent.length > RECENT_SAMPLES || this.recentBytes > RECENT_BYTES)
      this.recentBytes -= this.recent.shift()!.image.length;
  }

  /** The image of one of the latest samples, by key. */
  recentImage(key: string): { image: Buffer; format: ImageFormat } | undefined {
    const hit = this.recent.find((r) => r.sample.key === key);
    return hit && { image: hit.image, format: hit.sample.format };
  }

  /**
   * Per query: the quota of a partition and of the run, and what was delivered (of the partition count the latest
   * sample used: a client that changes P starts a new run). Then the partitions of that run, newest epoch counts.
   */
  snapshot(plan: Plan): StreamProgressSnapshot {
    const P = this.lastP;
    const quota = quotas(plan, P);
    const run = [...this.partitions.values()].filter((x) => x.P === P).sort((a, b) => a.p - b.p);
    return {
      partitions: P,
      partitions_seen: run.length,
      queries: plan.header.queries.map((q, qi) => ({
        name: q.name,
        quota: quota[qi]!,
        target: quota[qi]! * P,
        delivered: run.reduce((sum, x) => sum + (x.delivered[qi] ?? 0), 0),
      })),
      per_partition: run.slice(0, LISTED_PARTITIONS).map((x) => ({ p: x.p, epoch: x.epoch, delivered: x.delivered })),
      recent: this.recent.map((r) => r.sample),
    };
  }
}
