import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readTarSamples } from '../../src/io/tar-read.js';

export const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

/**
 * Runs the CLI (with `env` added to this process's environment); with `killWhen`, SIGKILLs it `killDelayMs` after
 * the condition (polled every 10 ms) first holds.
 */
export function run(
  args: string[],
  o: { killWhen?: () => Promise<boolean>; killDelayMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env, ...o.env };
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let poll: NodeJS.Timeout | undefined;
    if (o.killWhen) {
      const check = async () => {
        if (await o.killWhen!()) setTimeout(() => child.kill('SIGKILL'), o.killDelayMs ?? 0);
        else poll = setTimeout(() => void check(), 10);
      };
      void check();
    }
    child.on('close', (code, signal) => {
      clearTimeout(poll);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** `key:query:id` of every sample of the folder's tars, in shard order. */
export async function folderSamples(dir: string): Promise<string[]> {
  const ids: string[] = [];
  for (const f of (await readdir(dir)).filter((n) => n.endsWith('.tar')).sort()) {
    for await (const s of readTarSamples(join(dir, f))) {
      const json = JSON.parse(String(s.json)) as { id: number; query: string };
      ids.push(`${s.__key__ as string}:${json.query}:${json.id}`);
    }
  }
  return ids;
}
