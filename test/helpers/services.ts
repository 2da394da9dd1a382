import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const ROOT = new URL('../..', import.meta.url).pathname;
const run = promisify(execFile);

/** A free TCP port on 127.0.0.1 (bound and released: the server started next takes it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Runs one of the project's set-up scripts (installs what is missing) and returns the path it prints. */
async function setUp(script: string): Promise<string> {
  const { stdout } = await run('bash', [join(ROOT, 'scripts', script)], { timeout: 600_000 });
  return stdout.trim().split('\n').at(-1)!;
}

async function waitFor(what: string, ready: () => Promise<boolean>, child: ChildProcess, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode} before it was ready`);
    if (await ready().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} was not ready after ${ms} ms`);
}

export interface S3Server {
  endpoint: string;
  /** The AWS environment a client of this server needs (credentials are moto's: any will do). */
  env: Record<string, string>;
  /** Creates a bucket. */
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * moto's S3 server (server mode, from the pinned venv of scripts/s3-env.sh) on 127.0.0.1 at a free port, and the
 * AWS environment pointed at it, set in this process too (the SDK reads it when a client is made).
 */
export async function startS3Server(): Promise<S3Server> {
  const motoServer = await setUp('s3-env.sh');
  const port = await freePort();
  const child = spawn(motoServer, ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  await waitFor('moto_server', async () => (await fetch(`${endpoint}/moto-api/`)).status < 500, child);
  const env = {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
  };
  Object.assign(process.env, env);
  return {
    endpoint,
    env,
    async createBucket(name) {
      const res = await fetch(`${endpoint}/${name}`, { method: 'PUT' });
      if (!res.ok) throw new Error(`cannot create bucket ${name}: HTTP ${res.status}`);
    },
    stop: () => stopChild(child),
  };
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  /** Stops the server (SIGTERM: with persistence on, it saves first) and starts it again on the same port. */
  restart(opts?: { downMs?: number }): Promise<void>;
  /** kill -9. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Debian's redis-server (installed by scripts/redis-env.sh when missing) on 127.0.0.1 at a free port, with a folder
 * of its own; `persistence` turns the append-only file on (fsync every write), so a restart keeps the queue;
 * `password` requires it (requirepass).
 */
export async function startRedis({ persistence = false, password = '' } = {}): Promise<RedisServer> {
  const binary = await setUp('redis-env.sh');
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'clipstream-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    persistence ? 'yes' : 'no',
    '--appendfsync',
    'always',
    '--daemonize',
    'no',
    ...(password === '' ? [] : ['--requirepass', password]),
  ];
  let child = spawn(binary, args, { stdio: 'ignore' });
  const ping = async () => {
    const { Redis } = await import('ioredis');
    const client = new Redis({
      host: '127.0.0.1',
      port,
      password: password || undefined,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => {}); // refused while the server starts: the next try tells
    try {
      await client.connect();
      return (await client.ping()) === 'PONG';
    } finally {
      client.disconnect();
    }
  };
  await waitFor('redis-server', ping, child);
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    dir,
    async restart({ downMs = 0 } = {}) {
      await stopChild(child);
      await new Promise((r) => setTimeout(r, downMs));
      child = spawn(binary, args, { stdio: 'ignore' });
      await waitFor('redis-server', ping, child);
    },
    kill: () => stopChild(child, 'SIGKILL'),
    async stop() {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
