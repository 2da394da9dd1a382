import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The page of `clipstream serve` (docs/web.md): built into dist/web, which the npm package ships and
// src/server/page.ts serves. Everything is bundled: the page works offline, from no CDN.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  publicDir: false,
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 400,
  },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
});
