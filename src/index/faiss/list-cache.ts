/**
 * Inverted lists kept between searches, least recently used out past a byte bound; a list being read is read once
 * however many searches ask for it. A hit costs a Map lookup (no copy, no promise): probed lists repeat across
 * queries, and copying them out of a byte cache took a third of a warm search.
 */
export interface ListContent {
  n: number;
  codes: Uint8Array;
  /** Little-endian int64 ids as (low, high) int32 pairs. */
  ids: Int32Array;
}

export class ListCache {
  private readonly lists = new Map<number, ListContent>();
  private readonly pending = new Map<number, Promise<ListContent>>();
  private bytes = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly read: (list: number) => Promise<ListContent>,
  ) {}

  /** The list, at once when cached. */
  get(list: number): ListContent | Promise<ListContent> {
    const hit = this.lists.get(list);
    if (hit) {
      this.lists.delete(list);
      this.lists.set(list, hit);
      return hit;
    }
    let p = this.pending.get(list);
    if (!p) {
      p = this.read(list).then((content) => {
        this.store(list, content);
        return content;
      });
      p.finally(() => this.pending.delete(list)).catch(() => {});
      this.pending.set(list, p);
    }
    return p;
  }

  private store(list: number, content: ListContent): void {
    const size = content.codes.byteLength + content.ids.byteLength;
    if (size > this.maxBytes / 4) return; // one list must not flush the rest
    this.lists.set(list, content);
    this.bytes += size;
    for (const [oldest, old] of this.lists) {
      if (this.bytes <= this.maxBytes) break;
      this.lists.delete(oldest);
      this.bytes -= old.codes.byteLength + old.ids.byteLength;
    }
  }

  get cachedBytes(): number {
    return this.bytes;
  }
}
