// Bundle the dashboard with esbuild: OUTDIR/index.html, OUTDIR/assets/*-HASH.{js,css}.
// Usage: node build.mjs --outdir DIR [--metafile FILE]
// The asset names carry a content hash, so the server can let browsers keep
// them for a year; index.html names the current ones.
import * as esbuild from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : null;
};
const outdir = resolve(opt('--outdir') || join(here, 'dist'));
const metafileOut = opt('--metafile');

rmSync(join(outdir, 'assets'), { recursive: true, force: true });
mkdirSync(join(outdir, 'assets'), { recursive: true });

const result = await esbuild.build({
  entryPoints: [join(here, 'src', 'main.js')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020', 'chrome100'],
  outdir: join(outdir, 'assets'),
  entryNames: '[name]-[hash]',
  chunkNames: '[name]-[hash]',
  splitting: true,          // ECharts is its own file, fetched beside the first API calls
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
});

let js = null;
let css = null;
const preload = [];
for (const [file, info] of Object.entries(result.metafile.outputs)) {
  const url = '/' + relative(outdir, resolve(file)).split('\\').join('/');
  if (info.entryPoint && info.entryPoint.endsWith('src/main.js') && file.endsWith('.js')) js = url;
  else if (file.endsWith('.js')) preload.push(url);
  else if (file.endsWith('.css')) css = url;
}
if (!js) throw new Error('esbuild produced no JavaScript entry');

let html = readFileSync(join(here, 'src', 'index.html'), 'utf8');
html = html.replace('%SCRIPT%', js).replace('%STYLE%', css || '')
  .replace('%PRELOAD%', preload.sort().map((u) => `<link rel="modulepreload" href="${u}">`).join('\n'));
if (!css) html = html.replace(/<link rel="stylesheet"[^>]*>\n?/, '');
writeFileSync(join(outdir, 'index.html'), html);

if (metafileOut) {
  const inputs = Object.keys(result.metafile.inputs).map((p) => resolve(p));
  writeFileSync(metafileOut, JSON.stringify({ inputs, js, css }));
}
