import { useEffect, useState } from 'preact/hooks';

/** At most this many thumbnails are asked of the server at once (it bounds its own downloads too). */
const AT_ONCE = 6;
let running = 0;
const waiting: (() => void)[] = [];

async function limited<T>(work: () => Promise<T>): Promise<T> {
  if (running >= AT_ONCE) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await work();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

type State = { kind: 'loading' } | { kind: 'ok'; src: string } | { kind: 'dead'; why: string };

/**
 * A thumbnail from the server (`/thumbs/INDEX/ID.jpg` or a stream's recent sample). The server downloads the row's
 * url; when that fails it answers with the reason, and the tile says "dead link" with it instead of showing a
 * broken image.
 */
export function Thumb({ src, alt }: { src: string; alt: string }) {
  const [state, setState] = useState<State>({ kind: 'loading' });
  useEffect(() => {
    let url: string | undefined;
    let live = true;
    setState({ kind: 'loading' });
    limited(async () => {
      if (!live) return;
      const res = await fetch(src, { credentials: 'same-origin' });
      if (!res.ok) {
        const body = (await res.json().catch(() => null)) as { error?: string } | null;
        if (live) setState({ kind: 'dead', why: body?.error ?? `HTTP ${res.status}` });
        return;
      }
      url = URL.createObjectURL(await res.blob());
      if (live) setState({ kind: 'ok', src: url });
    }).catch((err: unknown) => live && setState({ kind: 'dead', why: String(err) }));
    return () => {
      live = false;
      if (url) URL.revokeObjectURL(url);
    };
  }, [src]);
  if (state.kind === 'ok') return <img class="thumb" src={state.src} alt={alt} />;
  if (state.kind === 'dead') {
    const reason = /dead link \(([^)]+)\)/.exec(state.why)?.[1] ?? 'unavailable';
    return (
      <div class="thumb dead" role="img" aria-label={`dead link: ${reason}`} title={state.why} data-dead={reason}>
        <span>dead link</span>
        <small>{reason}</small>
      </div>
    );
  }
  return <div class="thumb loading" role="img" aria-label="loading" />;
}
