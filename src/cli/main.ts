#!/usr/bin/env node
import './threadpool.js';
import { Command, CommanderError } from 'commander';
import { isClipstreamError } from '../core/errors.js';
import { demoCommand } from './demo.js';
import { downloadCommand } from './download.js';
import { indexCommand, queryCommand } from './index-commands.js';
import { inferenceCommand } from './inference.js';
import { normalizeFlags } from './parse.js';
import { serveCommand } from './serve.js';
import { planCommand, streamCommand } from './stream-commands.js';

const program = new Command('clipstream')
  .description('Query-driven web image datasets: download, index, and stream resized images into training')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

program.addCommand(downloadCommand());
program.addCommand(inferenceCommand());
program.addCommand(indexCommand());
program.addCommand(queryCommand());
program.addCommand(planCommand());
program.addCommand(streamCommand());
program.addCommand(serveCommand());
program.addCommand(demoCommand());

try {
  await program.parseAsync(normalizeFlags(process.argv));
} catch (err) {
  process.exitCode = report(err);
}

function report(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode; // commander already printed it (or --help / --version)
  if (isClipstreamError(err)) {
    process.stderr.write(`clipstream: error: ${err.message}\n`);
    if (err.hint) process.stderr.write(`  ${err.hint}\n`);
    return 2;
  }
  process.stderr.write(`clipstream: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  if (process.env.CLIPSTREAM_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
  else process.stderr.write('  set CLIPSTREAM_DEBUG=1 for the stack trace, and please report it\n');
  return 70;
}
