import type { Plan } from '../select/plan.js';

/**
 * Prints a plan's warnings once they are final: at once for a complete plan, when its long search ends for a plan
 * still being resolved (a stream starts on the first block). A failed long search goes to `onFailure`; the stream
 * that needs its candidates fails with the same error.
 */
export function warnWhenResolved(plan: Plan, prefix: string, onFailure: (err: unknown) => void = () => {}): void {
  const warn = () => {
    for (const w of plan.warnings) process.stderr.write(`clipstream: warning: ${prefix}${w}\n`);
  };
  if (plan.pending) plan.pending.then(warn, onFailure);
  else warn();
}
