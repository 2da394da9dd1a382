/** Turns whatever undici, net, tls or dns threw into a stable failure reason and a human message. */
import type { FailureReason } from '../core/types.js';
import { PRIVATE_ADDRESS_CODE } from './ssrf.js';

export interface Classified {
  reason: FailureReason;
  message: string;
  /** A failure of the moment that another attempt may not meet (a resolver that did not answer: EAI_AGAIN). */
  transient?: true;
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
]);
const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NODATA', 'EAI_NONAME']);
const TLS_CODE =
  /^(ERR_TLS_|ERR_SSL_|ERR_OSSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH|EPROTO$)/;

/** Error codes along the cause chain (and inside AggregateErrors from happy-eyeballs connects), outermost first. */
function codes(err: unknown, depth = 0): string[] {
  if (depth > 5 || typeof err !== 'object' || err === null) return [];
  const out: string[] = [];
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') out.push(code);
  if (err instanceof AggregateError) for (const e of err.errors) out.push(...codes(e, depth + 1));
  out.push(...codes((err as { cause?: unknown }).cause, depth + 1));
  return out;
}

function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(describe).join('; ');
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

export function classifyError(err: unknown, host: string): Classified {
  const all = codes(err);
  const has = (pred: (c: string) => boolean) => all.find(pred);
  if (has((c) => c === PRIVATE_ADDRESS_CODE)) return { reason: 'private_address', message: describe(err) };
  let code: string | undefined;
  if ((code = has((c) => TIMEOUT_CODES.has(c))))
    return { reason: 'timeout', message: `Timed out (${code}): ${describe(err)}` };
  if ((code = has((c) => DNS_CODES.has(c)))) {
    // EAI_AGAIN is "temporary failure in name resolution": an overloaded resolver, common on big crawls.
    return {
      reason: 'dns_error',
      message: `DNS lookup failed for ${host} (${code})`,
      ...(code === 'EAI_AGAIN' ? { transient: true as const } : {}),
    };
  }
  if ((code = has((c) => TLS_CODE.test(c))))
    return { reason: 'tls_error', message: `TLS error (${code}): ${describe(err)}` };
  const first = all[0];
  return { reason: 'connection_error', message: `Connection error${first ? ` (${first})` : ''}: ${describe(err)}` };
}
