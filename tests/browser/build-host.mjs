// Bundles the browser check's host pages: the editors page (host/: React, @grafana/* and Monaco,
// as Grafana would provide them to the plugin, plus Monaco's editor worker) and the dashboards
// page (panels/: the same shared modules and @grafana/ui's panel components). esbuild, because
// webpack takes minutes on @grafana/ui and these pages are test fixtures, not shipped artifacts.
import * as esbuild from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, '.build');

const common = {
  bundle: true,
  minify: true,
  sourcemap: false,
  platform: 'browser',
  target: 'es2020',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"', global: 'globalThis' },
};

await Promise.all([
  esbuild.build({
    ...common,
    entryPoints: { host: path.join(here, 'host', 'index.tsx'), panels: path.join(here, 'panels', 'index.tsx') },
    outdir: out,
    format: 'iife',
    jsx: 'automatic',
    loader: { '.ttf': 'file', '.woff': 'file', '.woff2': 'file', '.svg': 'file' },
    // Some dependencies read process.env directly.
    banner: { js: 'var process = globalThis.process || { env: { NODE_ENV: "production" } };' },
  }),
  esbuild.build({
    ...common,
    entryPoints: { 'editor.worker': 'monaco-editor/esm/vs/editor/editor.worker.js' },
    outdir: out,
    format: 'iife',
  }),
]);
console.log(`host page built into ${path.relative(process.cwd(), out)}`);
