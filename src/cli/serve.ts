import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Command } from 'commander';
import { loadClipModel } from '../clip/index.js';
import { invalidOption } from '../core/errors.js';
import { createFetcher } from '../fetch/index.js';
import { openIndex, type Index } from '../index/index.js';
import { clipBackServer } from '../server/clip-back.js';
import { toNumber } from './parse.js';

/** `clipstream serve`: clip back's HTTP API over our indexes. Binds 127.0.0.1 unless --host says otherwise. */
export function serveCommand(): Command {
  return new Command('serve')
    .description("Serve indexes over clip-retrieval's back API (/indices-list, /knn-service, /metadata) and /metrics")
    .option('--index <name=dir...>', 'an index to serve, as NAME=DIR (repeatable)')
    .option('--indices-paths <json>', "clip back's indices_paths.json: {name: dir} or {name: {indice_folder: dir}}")
    .option('--model <dir>', 'CLIP model folder to embed text and image queries')
    .option('--port <port>', 'port (0 = any free port)', toNumber('--port'), 1234)
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--allow-private-networks', 'let image_url queries reach private and loopback addresses', false)
    .action(async (flags: { index?: string[]; indicesPaths?: string; model?: string; port: number; host: string; allowPrivateNetworks: boolean }) => {
      const paths = await indexPaths(flags);
      const indices = new Map<string, Index>();
      for (const [name, dir] of paths) indices.set(name, await openIndex(dir));
      const model = flags.model ? await loadClipModel(flags.model) : undefined;
      const fetcher = createFetcher({ allowPrivateNetworks: flags.allowPrivateNetworks, timeoutMs: 10_000, maxBytes: 20 * 1024 * 1024 });
      const app = clipBackServer({ indices, model, fetcher });
      const address = await app.listen({ port: flags.port, host: flags.host });
      process.stdout.write(`clipstream serve: listening on ${address} with ${[...indices.keys()].join(', ')}${model ? ` and model ${model.name}` : ''}\n`);
      const stop = async () => {
        await app.close();
        await fetcher.close();
        await model?.close();
        for (const index of indices.values()) index.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}

async function indexPaths(flags: { index?: string[]; indicesPaths?: string }): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const spec of flags.index ?? []) {
    const eq = spec.indexOf('=');
    if (eq <= 0 || eq === spec.length - 1) throw invalidOption(`Expected NAME=DIR for --index but received ${JSON.stringify(spec)}`);
    out.set(spec.slice(0, eq), spec.slice(eq + 1));
  }
  if (flags.indicesPaths) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(flags.indicesPaths, 'utf8'));
    } catch (err) {
      throw invalidOption(`cannot read ${flags.indicesPaths} as JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null) throw invalidOption(`${flags.indicesPaths}: expected an object {name: folder}`);
    for (const [name, value] of Object.entries(parsed)) {
      const dir = typeof value === 'string' ? value : (value as { indice_folder?: unknown })?.indice_folder;
      if (typeof dir !== 'string') throw invalidOption(`${flags.indicesPaths}: index ${name} has no folder (a string or {indice_folder})`);
      out.set(name, resolve(dirname(flags.indicesPaths), dir));
    }
  }
  if (out.size === 0) throw invalidOption('Expected at least one --index NAME=DIR or --indices-paths FILE');
  return out;
}
