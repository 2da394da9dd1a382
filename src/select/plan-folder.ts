/**
 * Where a plan's candidates are written: the folder asked for (`clipstream plan --output`), or a temporary folder
 * (`clipstream stream SPEC`, `serve --spec`, the page's plans) that the plan's close() removes, and that is removed
 * when the process exits if nobody closed it (a plan of millions of rows takes GBs). Temporary folders are made
 * under the system's temporary folder ($TMPDIR).
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
  }
  return {
    dir: at,
    release: async () => {
      temporary.delete(at);
      await rm(at, { recursive: true, force: true });
    },
  };
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
