import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startImageServer, type ImageServer } from '../helpers/image-server.js';
import { s3List, s3ReadSmall } from '../../src/io/s3.js';
import { startRedis, startS3Server, type RedisServer, type S3Server } from '../helpers/services.js';
import { snapshotOf } from '../helpers/events.js';
import { tempDir } from '../helpers/tmp.js';
import {
  cli,
  downloadFlags,
  readShards,
  run,
  startWorker,
  stopWorkers,
  writeList,
  type WorkerProcess,
} from './helpers.js';

/**
 * `download --distributor queue` + `clipstream worker` processes on one machine, through Debian's redis-server
 * started here (127.0.0.1, a free port, a folder of its own).
 */

let images: ImageServer;
let redis: RedisServer;
let s3: S3Server;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  [images, redis, s3] = await Promise.all([startImageServer({ latencyMs: [5, 40] }), startRedis(), startS3Server()]);
  await s3.createBucket('cluster');
}, 600_000);
afterEach(async () => {
  await stopWorkers(workers.splice(0));
});
afterAll(async () => {
  await Promise.all([images?.close(), redis?.stop(), s3?.stop()]);
});

const queued = (list: string, out: string) => [
  ...downloadFlags(list, out),
  '--distributor',
  'queue',
  '--queue',
  redis.url,
];

describe('download --distributor queue with clipstream worker', () => {
  it('three workers write the same shards, keys and successes as a single-machine run', async () => {
    const dir = await tempDir();
    const list = await writeList(dir, images, 95);
    workers.push(...['w1', 'w2', 'w3'].map((name) => startWorker(redis.url, name)));
    const [head, local] = await Promise.all([
      run(queued(list, join(dir, 'queued'))),
      run(downloadFlags(list, join(dir, 'local'))),
    ]);
    expect(head.stderr).not.toMatch(/error/i);
    expect(head.code).toBe(0);
    expect(local.code).toBe(0);
    const q = await readShards(join(dir, 'queued'));
    const l = await readShards(join(dir, 'local'));
    expect(q.names.filter((n) => n !== '_tmp')).toEqual(l.names); // same files: 10 tars, parquets, stats
    expect(q.tars).toHaveLength(10);
    expect(q.keys.sort()).toEqual(l.keys.sort());
    expect(new Set(q.keys).size).toBe(q.keys.length);
    expect(q.successes).toBe(l.successes);
    expect(q.successes).toBe(95 - 11); // rows 4, 13, … are 404s
    expect(existsSync(join(dir, 'queued', '_tmp'))).toBe(false); // shard inputs and staging removed at the end
    expect(head.stdout).toMatch(/shards: 10 written, 0 already done/);
    // the shards were spread: more than one worker did some, and each shard was done once
    const logs = workers.map((w) => w.log());
    expect(logs.filter((log) => /: done, /.test(log)).length).toBeGreaterThan(1);
    expect(logs.join('').match(/: done, /g)).toHaveLength(10);
  });

  it('workers write an s3:// output: the same objects as a single-machine run, the shard inputs gone', async () => {
    const dir = await tempDir();
    const list = await writeList(dir, images, 35);
    const env = { ...process.env, ...s3.env };
    workers.push(startWorker(redis.url, 's3-a', [], env), startWorker(redis.url, 's3-b', [], env));
    const head = await run(queued(list, 's3://cluster/queued'), env);
    expect(head.stderr).not.toMatch(/error/i);
    expect(head.code).toBe(0);
    const local = await run(downloadFlags(list, 's3://cluster/local'), env);
    expect(local.code).toBe(0);
    const names = await s3List('s3://cluster/queued');
    expect(names).toEqual(await s3List('s3://cluster/local'));
    expect(names.filter((n) => n.endsWith('.tar'))).toHaveLength(4);
    expect(await s3List('s3://cluster/queued/_tmp')).toEqual([]); // each input removed once its shard was done
    const stats = async (out: string) =>
      JSON.parse(String(await s3ReadSmall(`${out}/00003_stats.json`, 1 << 20))) as Record<string, number>;
    expect((await stats('s3://cluster/queued')).successes).toBe((await stats('s3://cluster/local')).successes);
  });

  it('jobs status shows the run done, and the workers with their rates while they run', async () => {
    const dir = await tempDir();
    const list = await writeList(dir, images, 40);
    workers.push(startWorker(redis.url, 'status-1'), startWorker(redis.url, 'status-2'));
    const head = await run(queued(list, join(dir, 'out')));
    expect(head.code).toBe(0);
    const status = await run(['jobs', 'status', '--queue', redis.url, '--json']);
    expect(status.code).toBe(0);
    const parsed = JSON.parse(status.stdout) as {
      runs: { output: string; state: string; done: number; shards: number; successes: number; failed: number }[];
      workers: { name: string; rate: number }[];
    };
    const mine = parsed.runs.find((r) => r.output === join(dir, 'out'))!;
    expect(mine).toMatchObject({ state: 'done', done: 4, shards: 4, failed: 0 });
    expect(mine.successes).toBe(40 - 4);
    expect(parsed.workers.map((w) => w.name).sort()).toEqual(['status-1', 'status-2']);
    const text = await run(['jobs', 'status', '--queue', redis.url]);
    expect(text.stdout).toMatch(/workers: 2, [\d.]+ samples\/s in all/);
    expect(text.stdout).toMatch(/shards: 4 done, 0 active, 0 waiting, 0 failed of 4/);
    // the run is over: each worker that ran some of it closes what it held for it at its next beat
    await new Promise((r) => setTimeout(r, 2_500));
    const busy = workers.filter((w) => /: done, /.test(w.log()));
    expect(busy.length).toBeGreaterThan(0);
    for (const w of busy) expect(w.log()).toMatch(/run \w+ is over/);
  });

  it('jobs status --port serves the runs on the dashboard page: shards done / skipped / active / waiting / failed', async () => {
    const dir = await tempDir();
    const list = await writeList(dir, images, 20);
    workers.push(startWorker(redis.url, 'dash'));
    expect((await run(queued(list, join(dir, 'dash')))).code).toBe(0);
    const child = spawn(process.execPath, [cli, 'jobs', 'status', '--queue', redis.url, '--port', '0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      let stderr = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          stderr += String(d);
          const m = /queue dashboard: (http:\/\/127\.0\.0\.1:\d+)\/#dashboard/.exec(stderr);
          if (m) resolve(m[1]!);
        });
        child.on('close', () => reject(new Error(`exited before the dashboard: ${stderr}`)));
      });
      const snapshot = await snapshotOf(url, (s) =>
        s.jobs.some((j) => j.name.includes(join(dir, 'dash')) && j.shards?.done === 2),
      );
      const job = snapshot.jobs.find((j) => j.name.includes(join(dir, 'dash')))!;
      expect(job.shards).toEqual({ done: 2, skipped: 0, active: 0, waiting: 0, failed: 0 });
      expect(job.successes).toBe(20 - 2);
    } finally {
      child.kill('SIGINT');
    }
  });

  it("serve --queue shows the queue's runs on the page's dashboard, a run started after it too", async () => {
    const child = spawn(process.execPath, [cli, 'serve', '--queue', redis.url, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let stdout = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += String(d);
          const m = /listening on (http:\/\/127\.0\.0\.1:\d+) with the runs of the queue redis:/.exec(stdout);
          if (m) resolve(m[1]!);
        });
        child.on('close', () => reject(new Error(`exited before listening: ${stdout}`)));
      });
      const dir = await tempDir();
      const list = await writeList(dir, images, 10);
      workers.push(startWorker(redis.url, 'late'));
      expect((await run(queued(list, join(dir, 'late')))).code).toBe(0);
      // the server reads the queue once a second: the run shows within a few snapshots
      const snapshot = await snapshotOf(url, (s) =>
        s.jobs.some((j) => j.name.includes(join(dir, 'late')) && j.shards?.done === 1),
      );
      const job = snapshot.jobs.find((j) => j.name.includes(join(dir, 'late')))!;
      expect(job.shards).toMatchObject({ done: 1, failed: 0 });
      expect(job.successes).toBe(10 - 1);
    } finally {
      child.kill('SIGINT');
    }
  });

  it('a bad queue URL and an unreachable Redis are clear errors (exit 2 and 1), without a hang', async () => {
    const dir = await tempDir();
    const list = await writeList(dir, images, 3);
    const flags = downloadFlags(list, join(dir, 'o'));
    const bad = await run([...flags, '--distributor', 'queue', '--queue', 'http://127.0.0.1:6379']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /Expected redis:\/\/HOST:PORT\/DB for --queue but received "http:\/\/127\.0\.0\.1:6379"/,
    );
    const missing = await run([...flags, '--distributor', 'queue']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--queue: is required with --distributor queue/);
    const started = Date.now();
    const down = await run([...flags, '--distributor', 'queue', '--queue', 'redis://127.0.0.1:1/0']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach the queue's Redis at redis:\/\/127\.0\.0\.1:1\/0/);
    expect(Date.now() - started).toBeLessThan(15_000);
    const worker = await run(['worker', '--queue', 'redis://127.0.0.1:1/0']);
    expect(worker.code).toBe(1);
    expect(worker.stderr).toMatch(/cannot reach the queue's Redis/);
    const status = await run(['jobs', 'status', '--queue', 'redis:/nohost']);
    expect(status.code).toBe(2);
  });
});
