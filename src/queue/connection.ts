import { Redis, type RedisOptions } from 'ioredis';
import { invalidOption, queueUnavailable } from '../core/errors.js';

/** The BullMQ queue every shard job goes to; a job's id names its run (`{runId}:{shard}`). */
export const SHARD_QUEUE = 'clipstream-shards';
/** Prefix of clipstream's own keys (runs, counters, workers) and of BullMQ's. */
export const KEY_PREFIX = 'clipstream';

/** How long a command may wait for an unreachable Redis before the CLI says so (a bounded connect). */
export const CONNECT_TIMEOUT_MS = 5_000;

/**
 * `redis://[user:password@]HOST:PORT/DB` (or `rediss://` for TLS) → ioredis options. Anything else is refused
 * naming `flag`, with the form to use.
 */
export function parseQueueUrl(value: string, flag = '--queue'): RedisOptions {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw badUrl(value, flag, 'not a URL');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw badUrl(value, flag, `scheme ${url.protocol}`);
  if (url.hostname === '') throw badUrl(value, flag, 'no host');
  const port = url.port === '' ? 6379 : Number(url.port);
  const path = url.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,2}$/.test(path)) throw badUrl(value, flag, `database "${path}" is not a number 0–15`);
  const options: RedisOptions = {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port,
    db: path === '' ? 0 : Number(path),
    connectTimeout: CONNECT_TIMEOUT_MS,
  };
  if (url.username !== '') options.username = decodeURIComponent(url.username);
  if (url.password !== '') options.password = decodeURIComponent(url.password);
  if (url.protocol === 'rediss:') options.tls = {};
  return options;
}

function badUrl(value: string, flag: string, why: string) {
  return invalidOption(
    `Expected redis://HOST:PORT/DB for ${flag} but received ${JSON.stringify(displayUrl(value))} (${why})`,
    {
      hint: 'For example --queue redis://10.0.0.5:6379/0 (the Redis every machine of the job can reach).',
    },
  );
}

/** A queue URL without its password, for messages and logs. */
export function displayUrl(value: string): string {
  // the last @ before the path ends the credentials (a password may hold @, :, / …)
  return value.replace(/\/\/([^:@/]*):.*@(?=[^@]*$)/, '//$1:***@');
}

/**
 * Connects to the queue's Redis and checks it answers, within CONNECT_TIMEOUT_MS: an unreachable Redis is a clear
 * error naming the URL, never a hang. The client keeps reconnecting afterwards (a Redis restart mid-job is
 * survived); `maxRetriesPerRequest: null` as BullMQ requires.
 */
export async function connectQueue(url: string): Promise<Redis> {
  const options = parseQueueUrl(url);
  const client = new Redis({
    ...options,
    lazyConnect: true,
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    retryStrategy: (times) => Math.min(200 * times, 2_000),
  });
  let lastError: Error | undefined;
  // reconnection errors: the commands that need Redis report them; the last one explains a failed connect
  client.on('error', (err: Error) => (lastError = err));
  const deadline = new Promise<never>((_, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`)),
      CONNECT_TIMEOUT_MS,
    );
    timer.unref();
  });
  try {
    await Promise.race([
      (async () => {
        await client.connect();
        await client.ping();
        // ioredis's own SELECT on connect fails quietly (an 'error' event) and leaves the client on database 0
        await client.select(options.db ?? 0);
      })(),
      deadline,
    ]);
  } catch (err) {
    client.disconnect();
    if (/DB index is out of range/i.test((err as Error).message))
      throw invalidOption(`--queue ${displayUrl(url)}: this Redis has no database ${options.db}`, {
        hint: 'Redis has databases 0–15 unless its config says otherwise (databases N): pick one of those.',
      });
    const why = [(err as Error).message, lastError?.message].filter((m) => m !== undefined);
    const auth = why.some((m) => /NOAUTH|WRONGPASS|AUTH/.test(m));
    throw queueUnavailable(`cannot reach the queue's Redis at ${displayUrl(url)}: ${[...new Set(why)].join('; ')}`, {
      hint: auth
        ? 'Redis wants a password: give it in --queue as redis://:PASSWORD@HOST:PORT/DB (or USER:PASSWORD@).'
        : 'Start Redis there (redis-server, with persistence: --appendonly yes), or check --queue and the firewall.',
      cause: err,
    });
  }
  return client;
}
