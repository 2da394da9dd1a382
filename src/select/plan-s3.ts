/**
 * Plan folders under an `s3://` prefix. `clipstream plan --output s3://…` resolves into a local staging folder (the
 * store appends as the search yields candidates; S3 cannot append) and, once the plan is complete, publishes its
 * files as whole objects — `candidates.jsonl`, `positions-*.bin` (lib-storage's multipart upload is aborted on
 * failure: an object exists whole or not at all), then `plan.json` last, the plan's completion marker. Readers open
 * the candidates in place (plan-store.ts, through the byte source's range reads).
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { checkBucket, s3Delete, s3Join, s3List, s3Put } from '../io/s3.js';
import { DATA_FILE, PLAN_FILE as PLAN_OBJECT } from './plan-store.js';

/** A plan's objects: the marker, the candidates, the positions, a leftover of an earlier clipstream's format. */
const isPlanObject = (name: string) =>
  name === PLAN_OBJECT || name === DATA_FILE || name === 'candidates.parquet' || /^positions-\d+\.bin$/.test(name);

/**
 * Before a plan is written to `url`: the bucket must exist (said before the search starts), and an earlier plan
 * there is removed, its `plan.json` first, so that no reader ever takes its marker for the new plan's.
 */
export async function clearPlanObjects(url: string): Promise<void> {
  await checkBucket(url);
  await s3Delete(url, [PLAN_OBJECT]);
  const stale = (await s3List(url)).filter(isPlanObject);
  await s3Delete(url, stale);
}

/**
 * Publishes a complete plan's files from the local folder `staged` to `url`, the header (`planJson`) last.
 * Returns the bytes published.
 */
export async function publishPlan(url: string, staged: string, files: string[], planJson: string): Promise<number> {
  await s3Delete(url, [PLAN_OBJECT]); // written again over a plan: incomplete until the new marker is there
  const kept = new Set(files);
  await s3Delete(
    url,
    (await s3List(url)).filter((n) => isPlanObject(n) && n !== PLAN_OBJECT && !kept.has(n)),
  );
  let bytes = 0;
  for (const name of files) {
    bytes += (await stat(join(staged, name))).size;
    await s3Put(s3Join(url, name), { file: join(staged, name) });
  }
  await s3Put(s3Join(url, PLAN_OBJECT), { bytes: planJson });
  return bytes + Buffer.byteLength(planJson);
}
