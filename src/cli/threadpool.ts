// Imported first by the CLI entry: libuv's pool serves DNS lookups, file I/O and every sharp/libvips job, and its
// size is fixed when first used. Four threads (the default) starve DNS while images are being resized.
import { availableParallelism } from 'node:os';

process.env.UV_THREADPOOL_SIZE ??= String(Math.max(8, availableParallelism() * 2));
