#!/usr/bin/env node
import './boot.js';
import { Command, CommanderError } from 'commander';
import { ERROR_CATALOGUE, isClipstreamError } from '../core/errors.js';
import { normalizeFlags } from './parse.js';

/** Each command's module imports what it runs (LanceDB, sharp, fastify, …): load only the one asked for. */
const commands: Record<string, () => Promise<Command>> = {
  download: async () => (await import('./download.js')).downloadCommand(),
  inference: async () => (await import('./inference.js')).inferenceCommand(),
  index: async () => (await import('./index-commands.js')).indexCommand(),
  query: async () => (await import('./index-commands.js')).queryCommand(),
  plan: async () => (await import('./stream-commands.js')).planCommand(),
  stream: async () => (await import('./stream-commands.js')).streamCommand(),
  serve: async () => (await import('./serve.js')).serveCommand(),
  demo: async () => (await import('./demo.js')).demoCommand(),
};

const program = new Command('clipstream')
  .description('Query-driven web image datasets: download, index, and stream resized images into training')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

try {
  const argv = normalizeFlags(process.argv);
  const asked = argv[2] !== undefined && Object.hasOwn(commands, argv[2]) ? [argv[2]] : Object.keys(commands);
  // addCommand does not pass exitOverride on (commander would exit 1 itself): copy it, so usage errors exit 2
  for (const name of asked) program.addCommand((await commands[name]!()).copyInheritedSettings(program));
  await program.parseAsync(argv);
} catch (err) {
  process.exitCode = report(err);
}

function report(err: unknown): number {
  // commander already printed it; its argument errors exit 1, ours (as every usage error here) 2
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : ERROR_CATALOGUE.INVALID_OPTION.exit;
  if (isClipstreamError(err) && err.kind !== 'bug') {
    process.stderr.write(`clipstream: error: ${err.message}\n`);
    if (err.hint) process.stderr.write(`  ${err.hint}\n`);
    return err.exitCode;
  }
  process.stderr.write(`clipstream: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  if (process.env.CLIPSTREAM_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
  else process.stderr.write('  this is a bug in clipstream: please report it (set CLIPSTREAM_DEBUG=1 for the stack trace)\n');
  return ERROR_CATALOGUE.INTERNAL.exit;
}
