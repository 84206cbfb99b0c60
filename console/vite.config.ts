/**
 * The console's build: Vite 7 with esbuild's own JSX transform for Preact (no plugin), into
 * `dist/web` beside the server's build (not `dist/console`: that is where `src/console`, the server side, compiles to); Berth serves it at `/`. Hashed file names, so the
 * server may let browsers cache `/assets/*` for a year. No inline scripts or styles (the CSP
 * forbids them): the module preload polyfill, which Vite would inline, is off.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/',
  publicDir: false,
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: true,
  },
});
