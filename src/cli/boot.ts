// Imported first by the CLI entry, for what must be set before anything else loads.
import * as nodeModule from 'node:module';
import { availableParallelism } from 'node:os';

// libuv's pool serves DNS lookups, file I/O and every sharp/libvips job, and its size is fixed when first used.
// Four threads (the default) starve DNS while images are being resized.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(8, availableParallelism() * 2));

// V8's code cache on disk (os.tmpdir()/node-compile-cache): the modules a command loads (LanceDB's and Arrow's
// bindings, undici, zod, sharp) compile once per installed version, not at every start (stream --help: 0.67 →
// 0.50 s). NODE_DISABLE_COMPILE_CACHE=1 turns it off. Node 22.1+ (engines says 22): looked up, not imported by name.
if ('enableCompileCache' in nodeModule) nodeModule.enableCompileCache();

// Evaluated before any other module of the CLI: on an older Node, undici and the rest fail at load time with
// errors that name none of this (e.g. "Cannot read properties of undefined (reading 'bind')").
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
if (NODE_MAJOR < 22) {
  process.stderr.write(
    `clipstream: error: Node ${process.versions.node} is too old: clipstream needs Node 22 or newer (24 LTS recommended)\n` +
      '  run ./clipstream from the checkout (it installs Node 24 into ~/.node24 on first use), or install Node 24\n',
  );
  process.exit(2);
}
