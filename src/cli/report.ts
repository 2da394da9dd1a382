import { CommanderError } from 'commander';
import { ERROR_CATALOGUE, isClipstreamError } from '../core/errors.js';

/**
 * What the CLI prints for an error that ended a command, and its exit status, both from the error catalogue: the
 * user's mistakes are "error: …" and a hint (exit 2), the machine's are the same with exit 1, a bug says so and
 * asks for a report (exit 70).
 */
export function reportError(err: unknown, write: (text: string) => void): number {
  // commander already printed it; its argument errors exit 1, ours (as every usage error here) 2
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : ERROR_CATALOGUE.INVALID_OPTION.exit;
  if (isClipstreamError(err) && err.kind !== 'bug') {
    write(`clipstream: error: ${err.message}\n`);
    if (err.hint) write(`  ${err.hint}\n`);
    return err.exitCode;
  }
  write(`clipstream: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  if (process.env.CLIPSTREAM_DEBUG) write(`${(err as Error)?.stack ?? ''}\n`);
  else write('  this is a bug in clipstream: please report it (set CLIPSTREAM_DEBUG=1 for the stack trace)\n');
  return ERROR_CATALOGUE.INTERNAL.exit;
}
