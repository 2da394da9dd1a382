import type { Plan } from './plan.js';

/** Where a plan's warnings and a failed long search are told: stderr for the CLI, the server's log for serve. */
export type Tell = (level: 'warning' | 'error', line: string) => void;

/**
 * Tells a plan's warnings once they are final: at once for a complete plan, when its long search ends for a plan
 * still being resolved (a stream starts on the first block), each line after `prefix`. A failed long search is
 * told as an error; the stream that needs its candidates fails with the same error.
 */
export function warnWhenResolved(plan: Plan, prefix: string, tell: Tell): void {
  const warn = () => plan.warnings.forEach((w) => tell('warning', `${prefix}${w}`));
  const failed = (err: unknown) => tell('error', `${prefix}${err instanceof Error ? err.message : String(err)}`);
  if (plan.pending) plan.pending.then(warn, failed);
  else warn();
}

/** The CLI's Tell: `clipstream: warning: …` on stderr. */
export const tellOnStderr: Tell = (level, line) => process.stderr.write(`clipstream: ${level}: ${line}\n`);

/** For a command that fails with the long search's error itself (plan, stream): its warnings only. */
export const warningsOnStderr: Tell = (level, line) => level === 'warning' && tellOnStderr(level, line);
