// Bundle every js/widgets/<name>.ts into src/peeklens/static/<name>.js (ESM, one file per widget),
// the files the anywidget classes in peeklens.widgets load as `_esm`, and js/report into report.js.
// Run through `npm run build:widgets` (pip install runs `npm run build` via hatch-jupyter-builder).
import { build } from "esbuild";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const widgetsDir = path.join(root, "js", "widgets");
const entryPoints = readdirSync(widgetsDir)
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.startsWith("_"))
  .map((f) => path.join(widgetsDir, f));

await build({
  entryPoints,
  outdir: path.join(root, "src", "peeklens", "static"),
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: process.env.PEEKLENS_DEV !== "1",
  sourcemap: false,
  legalComments: "none",
  logLevel: "warning",
});
// The offline HTML report: one classic script (inlined into the page by peeklens.report, so no
// module loading from file://), with the same views and results model as the widgets and the lab.
await build({
  entryPoints: [path.join(root, "js", "report", "index.ts")],
  outfile: path.join(root, "src", "peeklens", "static", "report.js"),
  bundle: true,
  format: "iife",
  target: "es2020",
  minify: process.env.PEEKLENS_DEV !== "1",
  sourcemap: false,
  legalComments: "none",
  logLevel: "warning",
});
console.log(`[build:widgets] ${entryPoints.length} widget bundles and report.js -> src/peeklens/static/`);
