// Build the prebuilt JupyterLab extension into src/peeklens/labextension (package.json "jupyterlab.outputDir")
// with @jupyter/builder against @jupyterlab/core-meta (no network, no JupyterLab install needed), then ship
// the tutorial notebooks (notebooks/*.ipynb of the repository) as static files the
// "Open peeklens tutorials" command copies into the user's folder.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const require = createRequire(path.join(here, 'package.json'));
const builder = require.resolve('@jupyter/builder/lib/build-labextension.js');
const core = require.resolve('@jupyterlab/core-meta/core.package.json');
const pkg = JSON.parse(readFileSync(path.join(here, 'package.json'), 'utf-8'));
const out = path.resolve(here, pkg.jupyterlab.outputDir);

rmSync(path.join(out, 'static'), { recursive: true, force: true });
const args = [builder, '--core-package-file', core];
if (process.env.PEEKLENS_DEV === '1') args.push('--development');
args.push(here);
const res = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (res.status !== 0) process.exit(res.status ?? 1);

const nbDir = path.join(repo, 'notebooks');
const tutDir = path.join(out, 'static', 'tutorials');
mkdirSync(tutDir, { recursive: true });
const notebooks = existsSync(nbDir)
  ? readdirSync(nbDir).filter((f) => /^\d\d.*\.ipynb$/.test(f)).sort()
  : [];
// The committed tutorials carry their full-size outputs and widget state (for code hosts and the docs);
// the copies a user opens from the launcher are stored clean, to be run (and a few KB, not MB, in the wheel).
for (const f of notebooks) {
  const nb = JSON.parse(readFileSync(path.join(nbDir, f), 'utf8'));
  for (const cell of nb.cells) {
    if (cell.cell_type === 'code') {
      cell.outputs = [];
      cell.execution_count = null;
    }
  }
  delete nb.metadata.widgets;
  writeFileSync(path.join(tutDir, f), `${JSON.stringify(nb, null, 1)}\n`);
}
writeFileSync(path.join(tutDir, 'index.json'), JSON.stringify({ notebooks }, null, 1));
console.log(`[build:lab] extension -> ${path.relative(repo, out)} (${notebooks.length} tutorials)`);
