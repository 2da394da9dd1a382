import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { indexInvalid, inputMalformed } from '../core/errors.js';
import { parseOptions } from '../core/validation.js';
import { readIndexInfo } from '../index/info.js';
import type { Candidate, Plan, PlanHeader, ResolveOptions } from './plan.js';
import { imageSpecSchema, readSpec } from './spec.js';

// Loaded when used: a stream from a spec needs no parquet, a stream from a plan folder no LanceDB.
const parquetRead = () => import('../io/parquet-read.js');
const parquetWrite = () => import('../io/parquet-write.js');
const planning = () => import('./plan.js');

/** A plan folder: `plan.json` (the header) + `candidates.parquet` (query, position, id, similarity, url, caption, metadata). */
export const PLAN_FILE = 'plan.json';
export const CANDIDATES_FILE = 'candidates.parquet';

export async function writePlan(dir: string, plan: Plan): Promise<void> {
  await plan.pending;
  await mkdir(dir, { recursive: true });
  const partial = join(dir, `${CANDIDATES_FILE}.partial`);
  const writer = await (
    await parquetWrite()
  ).openParquetWriter(
    partial,
    [
      { name: 'query', type: 'STRING' },
      { name: 'position', type: 'INT64' },
      { name: 'id', type: 'INT64' },
      { name: 'similarity', type: 'DOUBLE' },
      { name: 'url', type: 'STRING' },
      { name: 'caption', type: 'STRING' },
      { name: 'metadata', type: 'STRING' },
    ],
    { rowGroupSize: 10_000 },
  );
  try {
    for (const [qi, list] of plan.candidates.entries()) {
      const query = plan.header.queries[qi]!.name;
      for (const [position, c] of list.entries()) {
        await writer.writeRow({
          query,
          position,
          id: c.id,
          similarity: c.similarity,
          url: c.url,
          caption: c.caption,
          metadata: JSON.stringify(c.metadata),
        });
      }
    }
    await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  await rename(partial, join(dir, CANDIDATES_FILE));
  await writeFile(
    join(dir, `${PLAN_FILE}.partial`),
    JSON.stringify({ ...plan.header, warnings: plan.warnings }, null, 2) + '\n',
  );
  await rename(join(dir, `${PLAN_FILE}.partial`), join(dir, PLAN_FILE));
}

export async function isPlanDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

export async function readPlan(dir: string): Promise<Plan> {
  let header: PlanHeader & { warnings?: string[] };
  try {
    header = JSON.parse(await readFile(join(dir, PLAN_FILE), 'utf8')) as typeof header;
  } catch (err) {
    throw inputMalformed(`${dir} is not a plan folder: cannot read ${PLAN_FILE} (${(err as Error).message})`, {
      hint: 'Make one with: clipstream plan SPEC --output DIR',
    });
  }
  if (header.format_version !== 1 || !Array.isArray(header.queries) || typeof header.id !== 'string') {
    throw inputMalformed(`${join(dir, PLAN_FILE)} is not a plan of format_version 1`);
  }
  // A plan written before an image option existed gets its default (the stored id stays the plan's id).
  try {
    header.image = parseOptions(imageSpecSchema, header.image ?? {}, (path) => ['image', ...path].join('.'));
  } catch (err) {
    throw inputMalformed(`${join(dir, PLAN_FILE)} has an unusable image block: ${(err as Error).message}`);
  }
  const byName = new Map(header.queries.map((q, i) => [q.name, i]));
  const candidates: Candidate[][] = header.queries.map(() => []);
  const file = await (await parquetRead()).openParquet(join(dir, CANDIDATES_FILE));
  try {
    for (const group of file.rowGroups) {
      const rows = await file.readRows(
        ['query', 'position', 'id', 'similarity', 'url', 'caption', 'metadata'],
        group.start,
        group.start + group.rows,
      );
      for (const row of rows) {
        const qi = byName.get(String(row.query));
        const list = qi === undefined ? undefined : candidates[qi];
        if (!list || Number(row.position) !== list.length) {
          throw inputMalformed(
            `${join(dir, CANDIDATES_FILE)} does not match ${PLAN_FILE} (query ${String(row.query)}, position ${String(row.position)})`,
          );
        }
        list.push({
          id: Number(row.id),
          similarity: Number(row.similarity),
          url: String(row.url),
          caption: row.caption == null ? null : String(row.caption),
          metadata: JSON.parse(String(row.metadata ?? '{}')) as Record<string, unknown>,
        });
      }
    }
  } finally {
    await file.close();
  }
  header.queries.forEach((q, i) => {
    if (candidates[i]!.length !== q.planned) {
      throw inputMalformed(
        `${join(dir, CANDIDATES_FILE)} holds ${candidates[i]!.length} candidates for query ${q.name}, ${PLAN_FILE} says ${q.planned}`,
      );
    }
  });
  const { warnings = [], ...rest } = header;
  return { header: rest, candidates, warnings };
}

/**
 * A plan folder is read (and checked against its index when that is a local folder); a spec file is resolved,
 * progressively: the plan comes back with every query's first block and `pending` set (see `openPlan`).
 * A plan made for another index — rebuilt or extended since — is refused.
 */
export async function loadPlan(specOrPlan: string, opts: Pick<ResolveOptions, 'whileSearching'> = {}): Promise<Plan> {
  if (!(await isPlanDir(specOrPlan))) return (await planning()).openPlan(await readSpec(specOrPlan), opts);
  const plan = await readPlan(specOrPlan);
  const { location, count, dim, created_at } = plan.header.index;
  if (typeof location === 'string') {
    const info = await readIndexInfo(location).catch(() => undefined);
    if (info && (info.count !== count || info.dim !== dim || info.created_at !== created_at)) {
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
