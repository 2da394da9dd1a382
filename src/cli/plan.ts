import { Command } from 'commander';
import { resolve } from 'node:path';
import { invalidOption } from '../core/errors.js';
import type { Plan } from '../select/plan.js';
import { quotas } from '../stream/partition.js';
import { planProgress } from './plan-progress.js';
import { toLocalPath, toNumber } from './parse.js';
import { warningsOnStderr, warnWhenResolved } from '../select/plan-warnings.js';

// Loaded when the command runs (`--help` needs none of it): LanceDB for the search, ~50–100 ms.
const planning = () =>
  Promise.all([import('../select/plan.js'), import('../select/plan-file.js'), import('../select/spec.js')]);

/** `clipstream plan`: resolve a spec's queries against the index and write the plan folder. */
export function planCommand(): Command {
  return new Command('plan')
    .description(
      'Resolve a spec against its index: per query, the ordered candidates that will be streamed (a plan folder: plan.json + candidates.jsonl + positions-*.bin, written as the search finds them)',
    )
    .argument('<spec>', 'spec file (YAML or JSON, see docs/streaming.md)', toLocalPath('<spec>'))
    .requiredOption(
      '--output <dir>',
      'plan folder to write, or s3://bucket/prefix (staged locally, published when complete, plan.json last)',
      toLocalPath('--output', { s3: true }),
    )
    .option(
      '--partitions <n>',
      'show the per-partition quotas for this many partitions (world_size × num_workers)',
      toNumber('--partitions'),
      1,
    )
    .action(async (specPath: string, flags: { output: string; partitions: number }) => {
      if (!Number.isInteger(flags.partitions) || flags.partitions < 1)
        throw invalidOption(`Expected a positive integer for --partitions but received ${flags.partitions}`);
      const start = performance.now();
      const [{ resolvePlan }, { writePlan }, { readSpec }] = await planning();
      // toLocalPath lower-cases the scheme. On S3 the plan is staged in a temporary folder (S3 cannot append) and
      // published when complete; a missing bucket is said, and an earlier plan there removed, before the search.
      const remote = flags.output.startsWith('s3://');
      const spec = await readSpec(specPath);
      if (remote) await (await import('../select/plan-s3.js')).clearPlanObjects(flags.output);
      const progress = planProgress();
      const plan = await resolvePlan(spec, {
        dir: remote ? undefined : flags.output,
        onProgress: progress.update,
      }).finally(progress.stop);
      let bytes: number;
      try {
        bytes = await writePlan(flags.output, plan);
      } finally {
        await plan.close?.();
      }
      process.stdout.write(planTable(plan, flags.partitions));
      warnWhenResolved(plan, '', warningsOnStderr);
      const where = remote ? flags.output : resolve(flags.output);
      process.stdout.write(planSummary(plan, where, (performance.now() - start) / 1000, bytes));
    });
}

export function planTable(plan: Plan, partitions: number): string {
  const q = quotas(plan, partitions);
  const rows = plan.header.queries.map((x, i) =>
    [x.name, x.requested, `${x.available}${x.available_more ? '+' : ''}`, x.planned, q[i]! * partitions, q[i]!].map(
      String,
    ),
  );
  const head = ['query', 'requested', 'available', 'planned', `delivered (P=${partitions})`, 'per partition'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) =>
    cells.map((s, c) => (c === 0 ? s.padEnd(widths[c]!) : s.padStart(widths[c]!))).join('  ');
  const total = q.reduce((a, b) => a + b, 0);
  return [line(head), ...rows.map(line), `total: ${total * partitions} samples, ${total} per partition`, ''].join('\n');
}

/**
 * The closing line: the plan's id and folder, candidates written of rows found (`+`: the search stopped at what
 * the plan can use), bytes on disk, time and rate, and the process's peak memory (RSS), which does not grow with
 * the plan (docs/streaming.md).
 */
export function planSummary(plan: Plan, dir: string, seconds: number, bytes: number): string {
  const queries = plan.header.queries;
  const planned = queries.reduce((sum, q) => sum + q.planned, 0);
  const found = queries.reduce((sum, q) => sum + q.available, 0);
  const more = queries.some((q) => q.available_more) ? '+' : '';
  const n = (x: number) => x.toLocaleString('en-US');
  const mb = (b: number) => (b / 2 ** 20).toFixed(b < 2 ** 20 ? 2 : 0);
  return (
    `plan ${plan.header.id} written to ${dir} in ${seconds.toFixed(1)}s: ` +
    `${n(planned)} candidates for ${queries.length} ${queries.length === 1 ? 'query' : 'queries'} ` +
    `(${n(found)}${more} rows found), ${mb(bytes)} MB ${dir.startsWith('s3://') ? 'in the bucket' : 'on disk'}, ${n(Math.round(planned / Math.max(seconds, 1e-3)))} ` +
    `candidates/s, peak memory ${mb(process.resourceUsage().maxRSS * 1024)} MB\n`
  );
}
