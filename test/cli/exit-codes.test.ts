import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';

const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

function run(
  args: string[],
  node = process.execPath,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(node, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The system's Node when it is older than 22 (the machine has Node 20 in /usr/bin), else null. */
function oldNode(): string | null {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    if (!existsSync(candidate)) continue;
    const major = Number(execFileSync(candidate, ['-p', 'process.versions.node.split(".")[0]']).toString().trim());
    if (major < 22) return candidate;
  }
  return null;
}

describe('exit statuses: the user\'s mistakes exit 2 with a message, never "internal error"', () => {
  it('an unknown flag and a missing required option', async () => {
    const unknown = await run(['download', '--url-list', 'x', '--no-such-flag']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option '--no-such-flag'/);
    const missing = await run(['plan', 'spec.yaml']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/required option '--output <dir>' not specified/);
  });

  it('a port in use', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const dir = await tempDir();
      // checked before the index is opened (which may take minutes for a plan): the empty folder is not reached
      const r = await run(['serve', '--index', `x=${dir}`, '--port', String(port)]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        new RegExp(`clipstream: error: port ${port} on 127.0.0.1 is in use\n  Choose another --port`),
      );
    } finally {
      blocker.close();
    }
  });

  it.skipIf(oldNode() === null)('Node older than 22 says so (not "internal error")', async () => {
    const r = await run(['--help'], oldNode()!);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Node 2\d\.\d+\.\d+ is too old: clipstream needs Node 22 or newer/);
    expect(r.stderr).not.toMatch(/internal error/);
  });
});
