// Bundle the lab extension's TypeScript (and the shared views of js/views) into lib/index.js.
// JupyterLab and Lumino packages stay external: the JupyterLab builder shares them with the app.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

await build({
  entryPoints: [path.join(here, 'src', 'index.ts')],
  outfile: path.join(here, 'lib', 'index.js'),
  bundle: true,
  format: 'esm',
  target: 'es2020',
  platform: 'browser',
  external: ['@jupyterlab/*', '@lumino/*'],
  loader: { '.ipynb': 'json' },
  minify: false,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning'
});
console.log('[build:lab] lib/index.js');
