import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Building from nothing (venv + fixtures) takes ~2 min on 2 cores; a cached build answers at once. */
export const FIXTURE_TIMEOUT_MS = 10 * 60_000;

let built: Promise<string> | undefined;

/** The folder of faiss fixtures built with faiss-cpu and autofaiss (scripts/faiss-fixtures.sh), built once. */
export function faissFixtures(): Promise<string> {
  built ??= promisify(execFile)('bash', [join(ROOT, 'scripts/faiss-fixtures.sh')], {
    timeout: FIXTURE_TIMEOUT_MS,
    maxBuffer: 1 << 20,
  }).then(({ stdout }) => stdout.trim().split('\n').at(-1)!);
  return built;
}

export interface TopK {
  ids: number[][];
  distances: number[][];
}

/** faiss's own answers for one fixture (scripts/faiss/make_fixtures.py, record_from). */
export interface FaissAnswers {
  metric: 'ip' | 'l2';
  d: number;
  ntotal: number;
  settings: { nprobe?: number; nlist?: number; efSearch?: number };
  top10: TopK;
  top300: TopK;
  range: { radius: number; lims: number[]; ids: number[]; distances: number[] };
  probes?: number[][];
  override?: { params: string; settings: FaissAnswers['settings'] } & TopK;
  search_and_reconstruct: { ids: number[][]; vectors: number[][][] } | { error: string };
}

export async function answers(dir: string, name: string): Promise<FaissAnswers> {
  return JSON.parse(await readFile(join(dir, 'answers', `${name}.json`), 'utf8')) as FaissAnswers;
}

export interface Manifest {
  faiss: string;
  d: number;
  n: number;
  queries: number;
  fixtures: string[];
}

export async function manifest(dir: string): Promise<Manifest> {
  return JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Manifest;
}
