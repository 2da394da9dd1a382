/**
 * Politeness: at most `perHost` requests in flight per host, and a per-host cooldown after a 429 (or a 503 with
 * Retry-After) that makes every other request to that host wait instead of joining a 429 storm. Idle hosts are
 * forgotten.
 */
import { Semaphore } from '../core/async.js';

interface HostState {
  slots: Semaphore;
  /** Requests holding or waiting for a slot. */
  users: number;
  /** Epoch ms before which no request may start. */
  coolUntil: number;
  timer?: NodeJS.Timeout;
}

export class HostLimiter {
  private readonly hosts = new Map<string, HostState>();

  constructor(private readonly perHost: number) {}

  /** Waits for a slot on `host`, then for its cooldown to pass. Rejects with the signal's reason on abort. */
  async acquire(host: string, signal?: AbortSignal): Promise<() => void> {
    const state = this.state(host);
    state.users++;
    let releaseSlot: (() => void) | undefined;
    const release = () => {
      releaseSlot?.();
      releaseSlot = undefined;
      state.users--;
      this.forgetIfIdle(host, state);
    };
    try {
      releaseSlot = await acquireAbortable(state.slots, signal);
      while (state.coolUntil > Date.now()) await sleep(state.coolUntil - Date.now(), signal);
      return release;
    } catch (err) {
      release();
      throw err;
    }
  }

  /** No request to `host` starts in the next `ms` (extends, never shortens, a running cooldown). */
  cooldown(host: string, ms: number): void {
    const state = this.state(host);
    const until = Date.now() + ms;
    if (until <= state.coolUntil) return;
    state.coolUntil = until;
    clearTimeout(state.timer);
    state.timer = setTimeout(() => this.forgetIfIdle(host, state), ms + 1).unref();
  }

  /** Hosts currently tracked (for tests: idle hosts must not accumulate). */
  get size(): number {
    return this.hosts.size;
  }

  private state(host: string): HostState {
    let state = this.hosts.get(host);
    if (!state) {
      state = { slots: new Semaphore(this.perHost), users: 0, coolUntil: 0 };
      this.hosts.set(host, state);
    }
    return state;
  }

  private forgetIfIdle(host: string, state: HostState): void {
    if (state.users === 0 && state.coolUntil <= Date.now() && this.hosts.get(host) === state) {
      clearTimeout(state.timer);
      this.hosts.delete(host);
    }
  }
}

/** Semaphore.acquire that gives up on abort (a slot granted after the abort is handed straight back). */
export async function acquireAbortable(sem: Semaphore, signal?: AbortSignal): Promise<() => void> {
  signal?.throwIfAborted();
  const acquiring = sem.acquire();
  if (!signal) return acquiring;
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([acquiring, aborted]);
  } catch (err) {
    void acquiring.then((release) => release());
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
