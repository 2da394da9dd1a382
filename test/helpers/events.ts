import type { EventsSnapshot } from '../../src/server/wire.js';

/** The first `snapshot` event of the server's /api/events that `accept` takes, within `ms`. */
export async function snapshotOf(
  base: string,
  accept: (s: EventsSnapshot) => boolean = () => true,
  ms = 10_000,
): Promise<EventsSnapshot> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  try {
    const res = await fetch(`${base}/api/events`, { signal: controller.signal });
    let buffer = '';
    for await (const chunk of res.body!) {
      buffer += Buffer.from(chunk).toString('utf8');
      for (const m of buffer.matchAll(/event: snapshot\ndata: (.*)\n\n/g)) {
        const s = JSON.parse(m[1]!) as EventsSnapshot;
        if (accept(s)) return s;
      }
      buffer = buffer.slice(buffer.lastIndexOf('\n\n') + 2);
    }
    throw new Error('the event stream ended');
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}
