import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { indexInvalid, inputMalformed, inputNotFound } from '../core/errors.js';
import { checkBucket, isS3Url, joinAt, s3ReadSmall } from '../io/s3.js';
import { parseOptions } from '../core/validation.js';
import { readIndexInfo } from '../index/info.js';
import type { Plan, PlanHeader, ResolveOptions } from './plan.js';
import { planFolder } from './plan-folder.js';
import { publishPlan } from './plan-s3.js';
import { DATA_FILE as CANDIDATES, PLAN_FILE, PlanStore, positionsFile } from './plan-store.js';
import { imageSpecSchema, readSpec } from './spec.js';

// Loaded when used: a stream from a plan folder needs no LanceDB.
const planning = () => import('./plan.js');

/**
 * A plan folder: `plan.json` (the header, written last: a folder without it is no plan) and the candidates
 * (`candidates.jsonl` + `positions-{q}.bin`, src/select/plan-store.ts), which `clipstream plan` writes as the search
 * finds them and streams read back lazily.
 */
export { PLAN_FILE, DATA_FILE as CANDIDATES_FILE } from './plan-store.js';

/** A plan's stored header: `plan.json`. */
const planJson = (plan: Plan) => JSON.stringify({ ...plan.header, warnings: plan.warnings }, null, 2) + '\n';

/** A plan's `plan.json` is a few hundred bytes a query: anything this big is not one. */
const MAX_PLAN_JSON = 64 << 20;

/**
 * Writes the plan's header to `dir` once its long search has ended; a plan whose candidates are elsewhere (a
 * temporary folder) has them copied there first, one at a time. `dir` may be an `s3://` prefix (plan-s3.ts: the
 * candidates published from where they were written, `plan.json` last). Returns the bytes of the plan's files.
 */
export async function writePlan(dir: string, plan: Plan): Promise<number> {
  await plan.pending;
  if (isS3Url(dir)) return writeS3Plan(dir, plan);
  const at = resolve(dir);
  if (plan.dir === undefined || resolve(plan.dir) !== at) await copyCandidates(at, plan);
  await writeFile(join(at, `${PLAN_FILE}.partial`), planJson(plan));
  await rename(join(at, `${PLAN_FILE}.partial`), join(at, PLAN_FILE));
  await localStore(plan)?.files(); // its appends written
  const names = [PLAN_FILE, ...planFiles(plan)];
  const sizes = await Promise.all(names.map((n) => stat(join(at, n)).then((s) => s.size)));
  return sizes.reduce((a, b) => a + b, 0);
}

/** The local store a plan's candidates are read from, if they are (not an array, not a plan read from S3). */
function localStore(plan: Plan): PlanStore | undefined {
  const source = plan.candidates[0] as unknown as { store?: PlanStore };
  const store = source && 'store' in source ? source.store : undefined;
  return store instanceof PlanStore && store.writable ? store : undefined;
}

/** The candidates' files of a plan folder. */
const planFiles = (plan: Plan) => [CANDIDATES, ...plan.header.queries.map((_, q) => positionsFile(q))];

/** Publishes the plan's files from its local store's folder, or from a copy staged in a temporary folder. */
async function writeS3Plan(url: string, plan: Plan): Promise<number> {
  const store = localStore(plan);
  if (store) return publishPlan(url, store.dir, await store.files(), planJson(plan));
  const staged = await mkdtemp(join(tmpdir(), 'clipstream-plan-'));
  try {
    await copyCandidates(staged, plan);
    return await publishPlan(url, staged, planFiles(plan), planJson(plan));
  } finally {
    await rm(staged, { recursive: true, force: true });
  }
}

async function copyCandidates(dir: string, plan: Plan): Promise<void> {
  const folder = await planFolder(dir);
  const local = localStore(plan);
  if (local) {
    await local.copyTo(folder.dir); // the same format: the files are copied as they are
    return;
  }
  const store = await PlanStore.create(
    folder.dir,
    plan.header.queries.map((q) => q.name),
  );
  try {
    for (const [qi, list] of plan.candidates.entries()) {
      for (let from = 0; from < list.length; from += 1024) {
        const chunk = [];
        for (let i = from; i < Math.min(list.length, from + 1024); i++) chunk.push((await list.at(i))!);
        await store.append(qi, chunk);
      }
    }
  } finally {
    await store.close();
  }
}

/** A local folder, or an `s3://` prefix (a spec is a local file). */
export async function isPlanDir(path: string): Promise<boolean> {
  if (isS3Url(path)) return true;
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** A plan folder, its candidates opened for reading (close() releases them). */
export async function readPlan(dir: string): Promise<Plan> {
  const header = await readHeader(dir);
  const store = await PlanStore.open(
    dir,
    header.queries.map((q) => q.name),
    header.queries.map((q) => q.planned),
  );
  const { warnings = [], ...rest } = header;
  return {
    header: rest,
    candidates: rest.queries.map((_, qi) => store.list(qi)),
    warnings,
    dir,
    close: () => store.close(),
  };
}

/** `plan.json` of an `s3://` plan; a prefix without one is no plan (or one whose writing has not completed). */
async function readS3Header(url: string): Promise<string> {
  const text = await s3ReadSmall(joinAt(url, PLAN_FILE), MAX_PLAN_JSON);
  if (text !== undefined) return text.toString('utf8');
  await checkBucket(url); // a missing bucket is said as such
  throw inputNotFound(
    `${url} holds no plan: there is no ${joinAt(url, PLAN_FILE)} (no plan was written there, or its writing has not completed)`,
    { hint: 'Make one with: clipstream plan SPEC --output s3://BUCKET/PREFIX (plan.json is written last)' },
  );
}

async function readHeader(dir: string): Promise<PlanHeader & { warnings?: string[] }> {
  let header: PlanHeader & { warnings?: string[] };
  const text = isS3Url(dir) ? await readS3Header(dir) : undefined;
  try {
    header = JSON.parse(text ?? (await readFile(join(dir, PLAN_FILE), 'utf8'))) as typeof header;
  } catch (err) {
    throw inputMalformed(`${dir} is not a plan folder: cannot read ${PLAN_FILE} (${(err as Error).message})`, {
      hint: 'Make one with: clipstream plan SPEC --output DIR',
    });
  }
  if ((header.format_version as number) === 1)
    throw inputMalformed(`${dir} is a plan made by an earlier clipstream (candidates.parquet, read whole)`, {
      hint: 'Make the plan again: clipstream plan SPEC --output DIR (its candidates are now read from disk as needed).',
    });
  const planned = Array.isArray(header.queries) ? header.queries.map((q) => q?.planned) : [];
  if (
    header.format_version !== 2 ||
    typeof header.id !== 'string' ||
    planned.length === 0 ||
    !planned.every((n) => Number.isSafeInteger(n) && n >= 0)
  ) {
    throw inputMalformed(`${joinAt(dir, PLAN_FILE)} is not a plan of format_version 2`, {
      hint: `Is ${dir} a plan folder? Make it again with: clipstream plan SPEC --output ${dir}`,
    });
  }
  // A plan written before an image option existed gets its default (the stored id stays the plan's id).
  try {
    header.image = parseOptions(imageSpecSchema, header.image ?? {}, (path) => ['image', ...path].join('.'));
  } catch (err) {
    throw inputMalformed(`${joinAt(dir, PLAN_FILE)} has an unusable image block: ${(err as Error).message}`);
  }
  return header;
}

/**
 * A plan folder is read (and checked against its index when that is a local clipstream index); a spec file is
 * resolved, progressively, into a temporary folder: the plan comes back with every query's first block and
 * `pending` set (see `openPlan`). A plan made for another index — rebuilt or extended since — is refused.
 */
export async function loadPlan(
  specOrPlan: string,
  opts: Pick<ResolveOptions, 'whileSearching' | 'onProgress'> = {},
): Promise<Plan> {
  if (!(await isPlanDir(specOrPlan))) return (await planning()).openPlan(await readSpec(specOrPlan), opts);
  const plan = await readPlan(specOrPlan);
  const { location, count, dim, created_at } = plan.header.index;
  if (typeof location === 'string') {
    const info = await readIndexInfo(location).catch(() => undefined);
    if (info && (info.count !== count || info.dim !== dim || info.created_at !== created_at)) {
      await plan.close?.();
      throw indexInvalid(
        `the plan ${specOrPlan} was made for another index: ${location} now has ${info.count} rows × ${info.dim} (created ${info.created_at}), the plan expects ${count} × ${dim} (created ${created_at})`,
        {
          hint: 'Make the plan again: clipstream plan SPEC --output DIR',
        },
      );
    }
  }
  return plan;
}
