import { Command } from 'commander';
import { invalidOption } from '../core/errors.js';
import { toNumber } from './parse.js';

/** `clipstream worker`: runs shard jobs of a queue on this machine until SIGTERM / Ctrl-C. */
export function workerCommand(): Command {
  return new Command('worker')
    .description('Take shard jobs from a queue (download --distributor queue) and run them on this machine')
    .requiredOption('--queue <url>', "the job queue's Redis, redis://HOST:PORT/DB")
    .option('--processes-count <n>', 'worker threads, as download --processes-count', toNumber('--processes-count'), 1)
    .option(
      '--lock-duration <s>',
      'seconds after which the shards of a worker that went silent (killed, lost) go to another worker',
      toNumber('--lock-duration'),
      30,
    )
    .option('--name <name>', 'name shown by clipstream jobs status (default host:pid)')
    .action(async (flags: { queue: string; processesCount: number; lockDuration: number; name?: string }) => {
      if (!Number.isInteger(flags.processesCount) || flags.processesCount < 1 || flags.processesCount > 256) {
        throw invalidOption(`Expected an integer 1–256 for --processes-count but received ${flags.processesCount}`);
      }
      if (!(flags.lockDuration >= 1 && flags.lockDuration <= 3600)) {
        throw invalidOption(`Expected 1–3600 seconds for --lock-duration but received ${flags.lockDuration}`);
      }
      const { runWorker } = await import('../queue/worker.js');
      const { displayUrl } = await import('../queue/connection.js');
      const stop = new AbortController();
      const giveBack = new AbortController();
      const onSignal = (signal: string) => {
        if (stop.signal.aborted) {
          process.stderr.write(`worker: ${signal} again: giving the shards in flight back to the queue\n`);
          giveBack.abort();
          return;
        }
        process.stderr.write(
          `worker: ${signal}: taking no more shards, finishing the ones in flight (${signal} again gives them back)\n`,
        );
        stop.abort();
      };
      process.on('SIGTERM', () => onSignal('SIGTERM'));
      process.on('SIGINT', () => onSignal('SIGINT'));
      const log = (line: string) => process.stderr.write(`worker: ${line}\n`);
      const activity = runWorker({
        queue: flags.queue,
        processesCount: flags.processesCount,
        lockDurationMs: flags.lockDuration * 1000,
        name: flags.name,
        stop: stop.signal,
        giveBack: giveBack.signal,
        onEvent: log,
      });
      log(`taking shards from ${displayUrl(flags.queue)} with ${flags.processesCount} process(es)`);
      const done = await activity;
      log(`stopped: ${done.done} shard(s) done, ${done.failed} failed, ${done.samples} samples`);
    });
}
