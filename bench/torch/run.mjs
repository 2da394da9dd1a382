// bench/torch (issue 5): samples/s into a torch DataLoader (num_workers=2, decode="tensor") ÷ the server's own
// stream rate (the same partitions' raw tar bytes, 2 parallel HTTP readers, no decoding), in one run.
// This wrapper builds the world (bench/download's image server and url mix, an index whose rows are those urls, a
// spec with the cache on and the same spec without it) and runs bench/torch/loader.py in the venv of scripts/test-python.sh against the
// checkout's python/ package. Usage:
//   node bench/torch/run.mjs [--count 5000] [--batch-size 64] [--rounds 3] [--workers 2] [--network-rounds 1] [--encode-format jpg|npy]
// --encode-format npy: the server sends the resized pixels (HWC uint8 .npy), so neither side encodes or decodes.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fate } from '../download/fate.mjs';
import {
  arg,
  cli,
  embeddingSpec,
  indexWithCli,
  nearOneDirection,
  root,
  startImageServer,
  writeEmbeddingFolder,
} from '../stream/common.mjs';

const count = Number(arg('count', 5000));
const encodeFormat = arg('encode-format', 'jpg');
const venv = process.env.CLIPSTREAM_PY_VENV ?? join(homedir(), '.cache/clipstream/venv-python');
const python = join(venv, 'bin/python');
if (!existsSync(python)) {
  console.error(
    `bench/torch: no venv at ${venv}; run scripts/test-python.sh once (it makes it), or set CLIPSTREAM_PY_VENV`,
  );
  process.exit(2);
}

const server = await startImageServer();
const dir = await mkdtemp(join(tmpdir(), 'clipstream-bench-torch-'));
try {
  const dim = 16;
  const urlOf = (n) => `${server.url}/img/${n}.jpg`;
  await writeEmbeddingFolder(join(dir, 'emb'), { rows: count, dim, urlOf, vectorInto: nearOneDirection(dim) });
  await indexWithCli(join(dir, 'emb'), join(dir, 'index'), 'flat');
  const servable = Array.from({ length: count }, (_, n) => fate(n)).filter((f) => f.kind !== 'status').length;
  // An even number of samples a little under the servable urls, every url planned: no repeats in 2 partitions.
  const wanted = Math.floor((servable * 0.98) / 2) * 2;
  const spec = (name, cache) => {
    const path = join(dir, `${name}.json`);
    return writeFile(
      path,
      JSON.stringify(
        embeddingSpec({
          index: join(dir, 'index'),
          embedding: [1, ...new Array(dim - 1).fill(0)],
          count: wanted,
          oversample: (count - 0.5) / wanted,
          image: { encode_format: encodeFormat },
          fetch: { concurrency: 256, per_host: 256, retries: 0 },
          cache,
        }),
      ),
    ).then(() => path);
  };
  const cached = await spec('cached', { dir: join(dir, 'cache') });
  const uncached = await spec('uncached', { dir: null });
  const passOn = ['batch-size', 'rounds', 'workers', 'network-rounds'].flatMap((f) =>
    arg(f, undefined) === undefined ? [] : [`--${f}`, arg(f)],
  );
  const code = await new Promise((resolve) => {
    const child = spawn(
      python,
      [
        join(root, 'bench/torch/loader.py'),
        '--spec',
        cached,
        '--spec-nocache',
        uncached,
        '--urls',
        String(count),
        '--encode-format',
        encodeFormat,
        ...passOn,
      ],
      {
        stdio: 'inherit',
        env: {
          ...process.env,
          CLIPSTREAM_CLI: `${process.execPath} ${cli}`,
          // The checkout's package, not the copy pip installed into the venv.
          PYTHONPATH: [join(root, 'python'), process.env.PYTHONPATH].filter(Boolean).join(':'),
        },
      },
    );
    child.once('close', resolve);
  });
  process.exitCode = code ?? 1;
} finally {
  server.stop();
  await rm(dir, { recursive: true, force: true });
}
