import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';

const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

describe('clipstream demo --ui', () => {
  it("ends by serving the page over the demo's index and stream, until stopped", async () => {
    const dir = await tempDir();
    const child = spawn(
      process.execPath,
      [CLI, 'demo', '--ui', '--count', '120', '--output-folder', join(dir, 'out')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    const base = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        const m = /The demo's index and stream in your browser: (http:\/\/127\.0\.0\.1:\d+)\//.exec(stdout);
        if (m) resolve(m[1]!);
      });
      child.on('close', (code) => reject(new Error(`demo --ui exited (${code}) before serving the page:\n${stdout}`)));
    });
    try {
      expect((await fetch(`${base}/`)).headers.get('content-type')).toContain('text/html');
      const info = (await (await fetch(`${base}/api/info`)).json()) as {
        indices: { name: string }[];
        streams: string[];
        allow_new_streams: boolean;
      };
      expect([info.indices.map((i) => i.name), info.streams, info.allow_new_streams]).toEqual([
        ['demo'],
        ['demo'],
        true,
      ]);
      const search = await fetch(`${base}/api/search`, {
        method: 'POST',
        body: JSON.stringify({ index: 'demo', query: { text: 'red' }, k: 5 }),
      });
      const { results } = (await search.json()) as { results: { caption: string; id: number }[] };
      expect(results.every((r) => r.caption.includes('red'))).toBe(true);
      const thumb = await fetch(
        `${base}/thumbs/demo/${results.find((r) => r.id % 9 !== 4 && r.id % 23 !== 11)!.id}.jpg`,
      ); // the world is served again
      expect(thumb.status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await new Promise((resolve) => child.on('close', resolve))).toBe(0);
  }, 120_000);
});
