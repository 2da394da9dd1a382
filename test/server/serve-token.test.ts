import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CLIPSTREAM_TOKEN: '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('clipstream serve --host', () => {
  it('refuses to listen beyond loopback without a token: exit 2, with what to do', async () => {
    const r = await run(['serve', '--host', '0.0.0.0', '--index', 'x=/nonexistent']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--host 0.0.0.0 makes the server reachable from other machines: it then needs a token');
    expect(r.stderr).toContain('CLIPSTREAM_TOKEN');
  });

  it('refuses a token too short to be one', async () => {
    const r = await run(['serve', '--token', 'abc', '--index', 'x=/nonexistent']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Expected 8 to 256 printable characters without spaces for --token');
  });

  it('with CLIPSTREAM_TOKEN set it goes past the check (and stops at the next problem: the index)', async () => {
    const r = await run(['serve', '--host', '0.0.0.0', '--port', '0', '--index', 'x=/nonexistent'], {
      CLIPSTREAM_TOKEN: 'a-long-enough-token',
    });
    expect(r.stderr).not.toContain('needs a token');
    expect(r.stderr).toMatch(/nonexistent|not found|clipstream\.json/);
  });
});
