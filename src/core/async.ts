/**
 * Async-iterable stages with bounded concurrency and bounded buffers.
 * A slow consumer slows the producer: nothing here buffers more than `concurrency` results.
 */

export interface ParallelOptions {
  /** Maximum number of `fn` calls in flight (and of results held waiting for the consumer). */
  concurrency: number;
}

/**
 * Maps `fn` over `source` with at most `concurrency` calls in flight, yielding results in completion order.
 * Pulls from `source` only when a slot is free. Errors thrown by `fn` end the iteration (after in-flight calls
 * settle); stages that must not fail should return failures as values.
 */
export async function* parallelMapUnordered<A, B>(
  source: AsyncIterable<A> | Iterable<A>,
  fn: (item: A) => Promise<B>,
  { concurrency }: ParallelOptions,
): AsyncGenerator<B> {
  assertConcurrency(concurrency);
  const iterator = toAsyncIterator(source);
  const inFlight = new Map<number, Promise<{ id: number; result: PromiseSettledResult<B> }>>();
  let nextId = 0;
  let exhausted = false;
  try {
    while (true) {
      while (!exhausted && inFlight.size < concurrency) {
        const next = await iterator.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        const id = nextId++;
        inFlight.set(id, settle(id, fn, next.value));
      }
      if (inFlight.size === 0) return;
      const { id, result } = await Promise.race(inFlight.values());
      inFlight.delete(id);
      if (result.status === 'rejected') throw result.reason;
      yield result.value;
    }
  } finally {
    await Promise.allSettled(inFlight.values());
    if (!exhausted) await iterator.return?.();
  }
}

/**
 * Like `parallelMapUnordered` but yields results in input order. At most `concurrency` items are in flight or
 * waiting behind a slower earlier item, so memory stays bounded even when one call is slow.
 */
export async function* parallelMapOrdered<A, B>(
  source: AsyncIterable<A> | Iterable<A>,
  fn: (item: A) => Promise<B>,
  { concurrency }: ParallelOptions,
): AsyncGenerator<B> {
  assertConcurrency(concurrency);
  const iterator = toAsyncIterator(source);
  const queue: Promise<PromiseSettledResult<B>>[] = [];
  let exhausted = false;
  try {
    while (true) {
      while (!exhausted && queue.length < concurrency) {
        const next = await iterator.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        queue.push(settle(0, fn, next.value).then((s) => s.result));
      }
      const head = queue.shift();
      if (head === undefined) return;
      const result = await head;
      if (result.status === 'rejected') throw result.reason;
      yield result.value;
    }
  } finally {
    await Promise.allSettled(queue);
    if (!exhausted) await iterator.return?.();
  }
}

/** Groups items into arrays of `size` (the last one may be shorter). */
export async function* batch<A>(source: AsyncIterable<A> | Iterable<A>, size: number): AsyncGenerator<A[]> {
  if (!Number.isInteger(size) || size < 1)
    throw new RangeError(`Expected a positive integer for batch size but received ${size}`);
  let current: A[] = [];
  for await (const item of source) {
    current.push(item);
    if (current.length === size) {
      yield current;
      current = [];
    }
  }
  if (current.length > 0) yield current;
}

/** Collects an async iterable into an array. For tests and small inputs only. */
export async function collect<A>(source: AsyncIterable<A> | Iterable<A>): Promise<A[]> {
  const out: A[] = [];
  for await (const item of source) out.push(item);
  return out;
}

/** A counting semaphore, for limits that do not fit a single stage (per-host connections, workers). */
export class Semaphore {
  private available: number;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly size: number) {
    assertConcurrency(size);
    this.available = size;
  }

  async acquire(): Promise<() => void> {
    if (this.available > 0) {
      this.available--;
    } else {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.available++;
    };
  }

  async use<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  get pending(): number {
    return this.waiters.length;
  }
}

function settle<A, B>(id: number, fn: (item: A) => Promise<B>, item: A) {
  return Promise.resolve()
    .then(() => fn(item))
    .then(
      (value): { id: number; result: PromiseSettledResult<B> } => ({ id, result: { status: 'fulfilled', value } }),
      (reason): { id: number; result: PromiseSettledResult<B> } => ({ id, result: { status: 'rejected', reason } }),
    );
}

function toAsyncIterator<A>(source: AsyncIterable<A> | Iterable<A>): AsyncIterator<A> {
  if (Symbol.asyncIterator in source) return source[Symbol.asyncIterator]();
  const it = source[Symbol.iterator]();
  return {
    next: async () => it.next(),
    return: async () => it.return?.() ?? { done: true, value: undefined },
  };
}

function assertConcurrency(n: number): void {
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`Expected a positive integer for concurrency but received ${n}`);
}
