/**
 * What the bench server does with /img/{n}.jpg: deterministic from n. ~1.5% 404, 1% 500, 2% slow (1–3 s).
 * With `hostile`, 0.5% more trickle their body at 1 KB/s (a minute for a 60 KB image): the real web's stalling
 * servers, which a socket timeout never catches (img2dataset #437, #261).
 */
export function fate(n, hostile = false) {
  const h = (Math.imul(n, 2654435761) >>> 0) % 1000;
  if (hostile && h >= 995) return { kind: 'trickle' };
  if (h < 15) return { kind: 'status', status: 404 };
  if (h < 25) return { kind: 'status', status: 500 };
  if (h < 45) return { kind: 'slow', ms: 1000 + (h % 20) * 100 };
  // log-uniform between 20 and 400 ms
  return { kind: 'ok', ms: Math.round(20 * Math.pow(20, ((h * 7919) % 1000) / 1000)) };
}
