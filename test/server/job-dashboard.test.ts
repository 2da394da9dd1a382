import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProgressCounter } from '../../src/download/progress.js';
import { downloadJob, startJobDashboard } from '../../src/server/job-dashboard.js';
import { startImageServer, type ImageServer } from '../helpers/image-server.js';
import { snapshotOf } from '../helpers/events.js';
import { tempDir } from '../helpers/tmp.js';

const CLI = join(import.meta.dirname, '../../dist/cli/main.js');
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let images: ImageServer;
beforeAll(async () => {
  images = await startImageServer({ latencyMs: [150, 250] });
});
afterAll(() => images.close());

describe('the dashboard of a download', () => {
  it("shows the download's counters in the shape of a stream's: successes, target, failures by reason, shards", async () => {
    const counter = new ProgressCounter();
    const dashboard = await startJobDashboard({ port: 0, jobs: [downloadJob('out', () => counter)] });
    try {
      counter.setInputRows(10);
      counter.add({ successes: 6, failedToDownload: 1, failedToResize: 1, reasons: { http_404: 1, not_an_image: 1 } });
      counter.shardDone();
      const s = await snapshotOf(dashboard.url, (x) => x.jobs[0]?.delivered === 6);
      expect(s.jobs).toEqual([
        expect.objectContaining({
          name: 'out',
          kind: 'download',
          delivered: 6,
          target: 10,
          attempts: 8,
          failures: 2,
          reasons: { http_404: 1, not_an_image: 1 },
          shards: { done: 1, skipped: 0 },
        }),
      ]);
      const info = (await (await fetch(`${dashboard.url}/api/info`)).json()) as Json;
      expect(info.indices).toEqual([]); // the page shows only its dashboard
    } finally {
      await dashboard.close();
    }
  });

  it('clipstream download --port serves it while the download runs, and stops with it', async () => {
    const dir = await tempDir();
    const urls = Array.from({ length: 24 }, (_, i) =>
      i % 6 === 0 ? `${images.url}/status/404?i=${i}` : `${images.url}/img/40x30.jpg?color=336699&i=${i}`,
    );
    await writeFile(join(dir, 'urls.txt'), urls.join('\n'));
    const child = spawn(
      process.execPath,
      [
        CLI,
        'download',
        '--url-list',
        join(dir, 'urls.txt'),
        '--output-folder',
        join(dir, 'out'),
        '--thread-count',
        '2',
        '--allow-private-networks',
        '--port',
        '0',
        '--progress-interval',
        '60',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /download dashboard: (http:\/\/127\.0\.0\.1:\d+)\/#dashboard/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      child.on('close', () => reject(new Error(`exited before the dashboard: ${stderr}`)));
    });
    const s = await snapshotOf(url, (x) => x.jobs[0]?.target === 24 && x.jobs[0]?.attempts > 0);
    expect(s.jobs[0]).toEqual(expect.objectContaining({ name: 'out', kind: 'download', target: 24 }));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    await expect(fetch(`${url}/api/info`)).rejects.toThrow(); // stopped with the download
  });
});
