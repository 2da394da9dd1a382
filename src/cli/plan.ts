import { Command } from 'commander';
import { resolve } from 'node:path';
import { invalidOption } from '../core/errors.js';
import type { Plan } from '../select/plan.js';
import { quotas } from '../stream/partition.js';
import type { PlanProgress } from '../select/long-search.js';
import { countProgress } from './count-progress.js';
import { toLocalPath, toNumber } from './parse.js';
import { warnWhenResolved } from './plan-warnings.js';

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
    .requiredOption('--output <dir>', 'plan folder to write', toLocalPath('--output'))
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
      const progress = planProgress();
      const plan = await resolvePlan(await readSpec(specPath), {
        dir: flags.output,
        onProgress: progress.update,
      }).finally(progress.stop);
      try {
        await writePlan(flags.output, plan);
      } finally {
        await plan.close?.();
      }
      process.stdout.write(planTable(plan, flags.partitions));
      warnWhenResolved(plan, '');
      process.stdout.write(
        `plan ${plan.header.id} written to ${resolve(flags.output)} in ${((performance.now() - start) / 1000).toFixed(1)}s\n`,
      );
    });
}

/**
 * What a long plan is doing, on stderr: rows found per query (and lists or rows searched), buckets deduplicated,
 * candidates written — a bar on a terminal, a line every few seconds otherwise.
 */
function planProgress() {
  let bar: ReturnType<typeof countProgress> | undefined;
  let shown = '';
  return {
    update: (p: PlanProgress) => {
      const key = `${p.stage}:${p.query ?? ''}`;
      if (key !== shown) {
        bar?.stop();
        const [label, unit] =
          p.stage === 'search'
            ? [`plan: searching ${p.query}`, p.total === undefined ? 'rows found' : 'steps']
            : p.stage === 'dedup'
              ? ['plan: dedup across queries', 'buckets']
              : [`plan: ordering ${p.query}`, 'candidates'];
        bar = countProgress(label, unit);
        shown = key;
      }
      bar!.update(p.done ?? p.rows, p.total);
    },
    stop: () => bar?.stop(),
  };
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
