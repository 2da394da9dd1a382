/**
 * Where a plan's candidates are written: the folder asked for (`clipstream plan --output`), or a temporary folder
 * (`clipstream stream SPEC`, `serve --spec`, the page's plans) that the plan's close() removes, and that is removed
 * when the process exits if nobody closed it (a plan of millions of rows takes GBs), Ctrl-C and SIGTERM
 * included. Temporary folders are made under the system's temporary folder ($TMPDIR).
 */
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DATA_FILE } from './plan-store.js';

const temporary = new Set<string>();
let hooked = false;

export interface PlanFolder {
  dir: string;
  /** Removes the folder when it is temporary; a plan folder asked for stays. */
  release(): Promise<void>;
}

export async function planFolder(dir?: string): Promise<PlanFolder> {
  if (dir !== undefined) {
    const at = resolve(dir);
    await mkdir(at, { recursive: true });
    await clearPlanFiles(at);
    return { dir: at, release: async () => {} };
  }
  const at = await mkdtemp(join(tmpdir(), 'clipstream-plan-'));
  temporary.add(at);
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const d of temporary) rmSync(d, { recursive: true, force: true });
    });
    // Ctrl-C or a kill does not run 'exit' hooks by itself: exit (which does) unless someone else handles the
    // signal (clipstream serve closes and exits on its own).
    for (const [signal, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const) {
      process.once(signal, () => {
        if (process.listenerCount(signal) === 0) process.exit(code);
      });
    }
  }
  return {
    dir: at,
    release: async () => {
      temporary.delete(at);
      await rm(at, { recursive: true, force: true });
    },
  };
}

/**
 * Removes the temporary plan folders still there (their plans not closed): what process exit does, for a host
 * whose processes do not exit between jobs (a test runner's workers).
 */
export async function removeTemporaryPlans(): Promise<void> {
  const all = [...temporary];
  temporary.clear();
  await Promise.all(all.map((d) => rm(d, { recursive: true, force: true })));
}

/** A plan written again over an earlier one: its files go first (a reader never mixes two plans). */
async function clearPlanFiles(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const ours = names.filter(
    (n) =>
      n === 'plan.json' ||
      n === DATA_FILE ||
      n === 'candidates.parquet' ||
      n === '.work' ||
      /^positions-\d+\.bin$/.test(n),
  );
  await Promise.all(ours.map((n) => rm(join(dir, n), { recursive: true, force: true })));
}
