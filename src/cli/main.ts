#!/usr/bin/env node
import './boot.js';
import { Command } from 'commander';
import { reportError } from './report.js';
import { normalizeFlags } from './parse.js';

/** Each command's module imports what it runs (LanceDB, sharp, fastify, …): load only the one asked for. */
const commands: Record<string, () => Promise<Command>> = {
  download: async () => (await import('./download.js')).downloadCommand(),
  inference: async () => (await import('./inference.js')).inferenceCommand(),
  index: async () => (await import('./index-command.js')).indexCommand(),
  query: async () => (await import('./query.js')).queryCommand(),
  plan: async () => (await import('./plan.js')).planCommand(),
  stream: async () => (await import('./stream.js')).streamCommand(),
  serve: async () => (await import('./serve.js')).serveCommand(),
  demo: async () => (await import('./demo.js')).demoCommand(),
  worker: async () => (await import('./worker.js')).workerCommand(),
  jobs: async () => (await import('./jobs.js')).jobsCommand(),
};

const program = new Command('clipstream')
  .description('Query-driven web image datasets: download, index, and stream resized images into training')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

// A reader that stops (`| head`) closes the pipe and stdout reports EPIPE: the command ends quietly with status 0, as
// a Unix filter's producer does (`stream --output -` also stops its downloads). Without a listener, the error
// event killed the process with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') return;
  process.stderr.write(`clipstream: error: cannot write to stdout: ${err.message}\n`);
  process.exit(74); // EX_IOERR
});

try {
  const argv = normalizeFlags(process.argv);
  const asked = argv[2] !== undefined && Object.hasOwn(commands, argv[2]) ? [argv[2]] : Object.keys(commands);
  // addCommand does not pass exitOverride on (commander would exit 1 itself): copy it, so usage errors exit 2
  for (const name of asked) {
    const command = (await commands[name]!()).copyInheritedSettings(program);
    for (const sub of command.commands) sub.copyInheritedSettings(command); // `index info`
    program.addCommand(command);
  }
  await program.parseAsync(argv);
} catch (err) {
  process.exitCode = reportError(err, (text) => process.stderr.write(text));
}
