import { copyFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startImageServer, type ImageServer } from '../helpers/image-server.js';
import { startRedis, type RedisServer } from '../helpers/services.js';
import { tempDir } from '../helpers/tmp.js';
import { downloadFlags, readShards, run, startWorker, stopWorkers, writeList, type WorkerProcess } from './helpers.js';

/**
 * What goes wrong on a cluster, for real: a worker killed with -9 mid-shard, Redis restarted mid-job (persistence
 * on), a shard that keeps failing, a cancelled run, a graceful stop. Slow images (latency) keep shards in flight.
 */

let images: ImageServer;
let redis: RedisServer;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  [images, redis] = await Promise.all([startImageServer({ latencyMs: [60, 160] }), startRedis({ persistence: true })]);
}, 600_000);
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail') {
    for (const w of workers) process.stderr.write(`--- worker log:\n${w.log()}\n`);
  }
  await stopWorkers(workers.splice(0));
});
afterAll(async () => {
  await Promise.all([images?.close(), redis?.stop()]);
});

const queued = (list: string, out: string, extra: string[] = []) => [
  ...downloadFlags(list, out),
  '--distributor',
  'queue',
  '--queue',
  redis.url,
  ...extra,
];

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function runEnqueued(out: string): Promise<boolean> {
  const status = await run(['jobs', 'status', '--queue', redis.url, '--json']);
  const runs = (JSON.parse(status.stdout) as { runs: { output: string; enqueued: boolean; state: string }[] }).runs;
  return runs.some((r) => r.output === out && r.enqueued && r.state === 'running');
}

/** Every shard once: 10 complete tars (a truncated one throws while read), no key twice, all the successes. */
async function expectWhole(out: string, rows: number) {
  const shards = await readShards(out);
  expect(shards.tars).toHaveLength(Math.ceil(rows / 10));
  expect(shards.stats).toHaveLength(Math.ceil(rows / 10));
  expect(new Set(shards.keys).size).toBe(shards.keys.length);
  const failures = Array.from({ length: rows }, (_, i) => i).filter((i) => i % 9 === 4).length;
  expect(shards.keys).toHaveLength(rows - failures);
  expect(shards.successes).toBe(rows - failures);
  expect(shards.names.filter((n) => n.includes('.partial'))).toEqual([]);
}

describe('queue faults', () => {
  it('kill -9 of a worker mid-shard: its shards go to the others, every shard ends once, no tar truncated', async () => {
    const dir = await tempDir();
    const out = join(dir, 'out');
    const list = await writeList(dir, images, 100);
    const victim = startWorker(redis.url, 'victim');
    workers.push(victim);
    const head = run(queued(list, out));
    await until('the victim to start shards', () => /started/.test(victim.log()));
    await new Promise((r) => setTimeout(r, 150)); // mid-shard: some samples written to its staging tar
    victim.child.kill('SIGKILL');
    workers.push(startWorker(redis.url, 'survivor-1'), startWorker(redis.url, 'survivor-2'));
    const done = await head;
    expect(done.stderr).not.toMatch(/error/i);
    expect(done.code).toBe(0);
    // the shards the victim had started and not finished were redone by the survivors
    const started = [...victim.log().matchAll(/shard (\d+) of run \w+: started/g)].map((m) => m[1]);
    const finished = new Set([...victim.log().matchAll(/shard (\d+) of run \w+: done/g)].map((m) => m[1]));
    const survivors = workers
      .slice(1)
      .map((w) => w.log())
      .join('');
    for (const shard of started.filter((s) => !finished.has(s))) expect(survivors).toMatch(`shard ${shard} of run`);
    expect(started.length).toBeGreaterThan(finished.size);
    await expectWhole(out, 100);
  });

  it('Redis restarted mid-job (append-only file on): the job resumes and ends with every shard once', async () => {
    const dir = await tempDir();
    const out = join(dir, 'out');
    const list = await writeList(dir, images, 100);
    workers.push(startWorker(redis.url, 'r1'), startWorker(redis.url, 'r2'));
    const head = run(queued(list, out));
    await until('a first shard done', () => workers.some((w) => /: done, /.test(w.log())));
    await redis.restart({ downMs: 1_000 });
    const done = await head;
    expect(done.code).toBe(0);
    await expectWhole(out, 100);
  });

  it('a shard that keeps failing is reported; jobs retry puts it back and the same command re-attaches', async () => {
    const dir = await tempDir();
    const out = join(dir, 'out');
    const list = await writeList(dir, images, 30);
    const head = run(queued(list, out, ['--max-shard-retry', '1']));
    await until('the run to be enqueued', () => runEnqueued(out));
    await copyFile(join(out, '_tmp', '00001.rows'), join(dir, 'saved.rows'));
    await rm(join(out, '_tmp', '00001.rows'));
    workers.push(startWorker(redis.url, 'f1'));
    const failed = await head;
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/shard 1 FAILED: its input _tmp\/00001\.rows is missing/);
    expect(failed.stdout).toMatch(/shards: 2 written/);
    const status = await run(['jobs', 'status', '--queue', redis.url]);
    expect(status.stdout).toMatch(/shards: 2 done, 0 active, 0 waiting, 1 failed of 3/);
    expect(status.stdout).toMatch(/shard 1 FAILED: its input/);

    await copyFile(join(dir, 'saved.rows'), join(out, '_tmp', '00001.rows'));
    const retry = await run(['jobs', 'retry', '--queue', redis.url]);
    expect(retry.stdout).toMatch(/1 failed shard\(s\) back in the queue/);
    const again = await run(queued(list, out));
    expect(again.code).toBe(0);
    await expectWhole(out, 30);
  });

  it('--max-shard-retry N: a shard whose failure may pass is tried N + 1 times, then reported', async () => {
    const dir = await tempDir();
    const out = join(dir, 'out');
    const list = await writeList(dir, images, 30);
    const head = run(queued(list, out, ['--max-shard-retry', '2']));
    await until('the run to be enqueued', () => runEnqueued(out));
    await writeFile(join(out, '_tmp', '00001.rows'), 'not the rows the head wrote'); // unreadable, not missing
    const worker = startWorker(redis.url, 'n1');
    workers.push(worker);
    const failed = await head;
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/shard 1 FAILED: /);
    expect(worker.log().match(/shard 1 of run \S+ failed: /g)).toHaveLength(3);
  });

  it('jobs cancel: waiting shards leave the queue and the head ends saying so', async () => {
    const dir = await tempDir();
    const out = join(dir, 'out');
    const list = await writeList(dir, images, 50);
    const head = run(queued(list, out));
    await until('the run to be enqueued', () => runEnqueued(out));
    const cancel = await run(['jobs', 'cancel', '--queue', redis.url]);
    expect(cancel.stdout).toMatch(/cancelled, 5 waiting shard\(s\) removed/);
    const ended = await head;
    expect(ended.code).toBe(1);
    expect(ended.stdout).toMatch(/the run was cancelled: 5 shard\(s\) not done/);
    const status = JSON.parse((await run(['jobs', 'status', '--queue', redis.url, '--json'])).stdout) as {
      jobs: Record<string, number>;
    };
    expect(status.jobs.waiting).toBe(0);
  });

  it('SIGTERM: the worker finishes its shards in flight and stops; twice: it gives them back', async () => {
    const dir = await tempDir();
    const out = join(dir, 'out');
    const list = await writeList(dir, images, 60);
    const polite = startWorker(redis.url, 'polite');
    workers.push(polite);
    const head = run(queued(list, out));
    await until('shards in flight', () => /started/.test(polite.log()));
    polite.child.kill('SIGTERM');
    expect(await polite.exited).toBe(0);
    const finished = polite.log().match(/: done, /g)?.length ?? 0;
    expect(finished).toBe(polite.log().match(/: started/g)!.length); // every shard it took, it finished
    expect((await readdir(out)).filter((n) => n.endsWith('_stats.json'))).toHaveLength(finished);

    const hasty = startWorker(redis.url, 'hasty');
    workers.push(hasty);
    await until('shards in flight', () => /started/.test(hasty.log()));
    hasty.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 50));
    hasty.child.kill('SIGTERM');
    expect(await hasty.exited).toBe(0);
    expect(hasty.log()).toMatch(/given back to the queue/);
    workers.push(startWorker(redis.url, 'closer'));
    expect((await head).code).toBe(0);
    await expectWhole(out, 60);
  });
});
