import * as net from 'node:net';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { loadClipModel } from '../clip/index.js';
import { invalidOption, portInUse } from '../core/errors.js';
import { localPathOf } from '../core/validation.js';
import { createFetcher } from '../fetch/index.js';
import { openIndexAt } from '../index/open-backend.js';
import type { Index } from '../index/search.js';
import { loadPlan } from '../select/index.js';
import { tellOnStderr } from '../select/plan-warnings.js';
import { isLoopbackHost } from '../server/access.js';
import { createServer } from '../server/app.js';
import { indexLocation, readIndicesPaths, type IndexEntry } from '../server/indices-paths.js';
import { openServedStream, type ServedStream } from '../server/streams.js';
import { toLocalPath, toNumber } from './parse.js';

/** `clipstream serve`: clip back's HTTP API over our indexes. Binds 127.0.0.1 unless --host says otherwise. */
export function serveCommand(): Command {
  return new Command('serve')
    .description(
      "Serve streams (webdataset tars per partition, see docs/streaming.md) and indexes over clip-retrieval's back API (/indices-list, /knn-service, /metadata), with /metrics",
    )
    .option(
      '--spec <name=spec...>',
      'a stream to serve, as NAME=SPEC_FILE_OR_PLAN_DIR (a plan folder may be s3://bucket/prefix; repeatable)',
    )
    .option(
      '--index <name=dir...>',
      'an index to serve, as NAME=DIR or NAME=URL: a clipstream index, or a clip-retrieval / LAION faiss folder (repeatable)',
    )
    .option(
      '--indices-paths <json>',
      "clip back's indices_paths.json: {name: dir} or {name: {indice_folder: dir, columns_to_return, use_arrow, …}}",
      toLocalPath('--indices-paths'),
    )
    .option('--model <dir>', 'CLIP model folder to embed text and image queries', toLocalPath('--model'))
    .option('--port <port>', 'port (0 = any free port)', toNumber('--port'), 1234)
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option(
      '--allow-private-networks',
      'let image_url queries, thumbnails and streams started from the page reach private and loopback addresses',
      false,
    )
    .option(
      '--token <token>',
      'ask every request for this token (default: $CLIPSTREAM_TOKEN); required with a --host other than loopback',
    )
    .option('--allow-new-streams', 'let the page (POST /api/streams) start streams', false)
    .option('--queue <url>', "show the runs of this job queue's Redis (redis://HOST:PORT/DB) on the page's dashboard")
    .action(async (flags: ServeFlags) => {
      const streamSources = namedPairs(flags.spec ?? [], '--spec', 'NAME=SPEC', (v, what) =>
        localPathOf(v, what, { s3: true }),
      );
      const token = tokenOf(flags);
      await checkPortFree(flags.port, flags.host); // before plans and indexes are opened, which may take minutes
      const paths = await indexEntries(flags, streamSources.size > 0 || flags.queue !== undefined);
      const streams = new Map<string, ServedStream>();
      const contexts: { close(): Promise<void> }[] = [];
      for (const [name, source] of streamSources) {
        const { stream, context } = await openServedStream(name, await loadPlan(source), tellOnStderr);
        contexts.push(context);
        streams.set(name, stream);
      }
      const indices = new Map<string, Index>();
      for (const [name, entry] of paths) {
        const opened = await openIndexAt(entry.location, entry).catch((err: unknown) => {
          throw Object.assign(err as Error, { message: `index ${name}: ${(err as Error).message}` });
        });
        indices.set(name, opened.index);
      }
      const model = flags.model ? await loadClipModel(flags.model) : undefined;
      const fetcher = createFetcher({
        allowPrivateNetworks: flags.allowPrivateNetworks,
        timeoutMs: 10_000,
        maxBytes: 20 * 1024 * 1024,
      });
      // loaded only when asked for: BullMQ and ioredis are the queue's
      const queue = flags.queue ? await (await import('../queue/dashboard.js')).watchQueue(flags.queue) : undefined;
      const web = {
        ...(queue && { jobs: [queue.jobs] }),
        indexDirs: new Map([...paths].map(([name, entry]) => [name, entry.location])),
        modelDir: flags.model && resolve(flags.model),
        allowNewStreams: flags.allowNewStreams,
        allowPrivateNetworks: flags.allowPrivateNetworks,
      };
      const app = createServer({ indices, model, fetcher, streams, token, web });
      const address = await listen(app, flags.port, flags.host);
      const what = [
        ...[...streams.keys()].map((n) => `stream ${n}`),
        ...[...indices.keys()].map((n) => `index ${n}`),
        ...(queue ? [`the runs of the queue ${queue.url}`] : []),
      ].join(', ');
      process.stdout.write(
        `clipstream serve: listening on ${address} with ${what || 'nothing yet'}${model ? ` and model ${model.name}` : ''}\n`,
      );
      process.stdout.write(`  page: ${address}/${token ? ' (open it once with ?token=TOKEN)' : ''}\n`);
      for (const name of streams.keys()) {
        process.stdout.write(
          `  ${name}: ${address}/streams/${name}/{0..P-1}.tar?partitions=P&epoch=E  (stats: ${address}/streams/${name}/stats)\n`,
        );
      }
      const stop = async () => {
        await app.close();
        await fetcher.close();
        await model?.close();
        await queue?.close();
        for (const context of contexts) await context.close();
        for (const index of indices.values()) index.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}

interface ServeFlags {
  queue?: string;
  spec?: string[];
  index?: string[];
  indicesPaths?: string;
  model?: string;
  port: number;
  host: string;
  allowPrivateNetworks: boolean;
  token?: string;
  allowNewStreams: boolean;
}

/** --token or $CLIPSTREAM_TOKEN; a server reachable from other machines must have one. */
function tokenOf(flags: ServeFlags): string | undefined {
  const token = flags.token ?? (process.env.CLIPSTREAM_TOKEN || undefined);
  if (token !== undefined && !/^[\x21-\x7e]{8,256}$/.test(token))
    throw invalidOption('Expected 8 to 256 printable characters without spaces for --token (or CLIPSTREAM_TOKEN)');
  if (token === undefined && !isLoopbackHost(flags.host)) {
    throw invalidOption(`--host ${flags.host} makes the server reachable from other machines: it then needs a token`, {
      hint: 'Pass --token TOKEN or set CLIPSTREAM_TOKEN (e.g. CLIPSTREAM_TOKEN=$(openssl rand -hex 16)); clients send it as "Authorization: Bearer TOKEN".',
    });
  }
  return token;
}

/** Fails fast on a port in use or an address not of this machine (listen() checks again at the end). */
async function checkPortFree(port: number, host: string): Promise<void> {
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw invalidOption(`Expected a port in 0…65535 for --port but received ${port}`);
  if (port === 0) return;
  const probe = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen({ port, host, exclusive: true }, resolve);
    });
  } catch (err) {
    throw listenError(err, port, host);
  } finally {
    probe.close();
  }
}

function listenError(err: unknown, port: number, host: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE')
    return portInUse(`port ${port} on ${host} is in use`, {
      hint: 'Choose another --port, or --port 0 for any free port.',
    });
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EACCES') {
    return invalidOption(`cannot listen on ${host}:${port} (${code})`, {
      hint: 'Check --host (an address of this machine) and --port (above 1023 unless root).',
    });
  }
  return err;
}

async function listen(app: ReturnType<typeof createServer>, port: number, host: string): Promise<string> {
  try {
    return await app.listen({ port, host });
  } catch (err) {
    throw listenError(err, port, host);
  }
}

function namedPairs(
  values: string[],
  flag: string,
  form: string,
  location: (value: string, what: string) => string,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0 || eq === value.length - 1)
      throw invalidOption(`Expected ${form} for ${flag} but received ${JSON.stringify(value)}`);
    const name = value.slice(0, eq);
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name))
      throw invalidOption(
        `Expected a name of letters, digits, _ or - for ${flag} but received ${JSON.stringify(name)}`,
      );
    if (out.has(name)) throw invalidOption(`${flag} ${name} is given twice`);
    out.set(name, location(value.slice(eq + 1), `${flag} ${name}`));
  }
  return out;
}

/** --index NAME=DIR|URL and the indexes of --indices-paths; what the file asked for without effect is said once. */
async function indexEntries(
  flags: { index?: string[]; indicesPaths?: string },
  hasStreams: boolean,
): Promise<Map<string, IndexEntry>> {
  const named = namedPairs(flags.index ?? [], '--index', 'NAME=DIR or NAME=URL', (v, what) =>
    indexLocation(v, what, process.cwd()),
  );
  const out = new Map<string, IndexEntry>([...named].map(([name, location]) => [name, { location }]));
  if (flags.indicesPaths) {
    const { entries, notes } = await readIndicesPaths(flags.indicesPaths);
    for (const note of notes) process.stderr.write(`clipstream serve: note: ${note}\n`);
    for (const [name, entry] of entries) {
      if (out.has(name)) throw invalidOption(`index ${name} is given by --index and in ${flags.indicesPaths}`);
      out.set(name, entry);
    }
  }
  if (out.size === 0 && !hasStreams)
    throw invalidOption(
      'Expected at least one --spec NAME=SPEC, --index NAME=DIR, --indices-paths FILE or --queue URL',
    );
  return out;
}
