// Screenshot harness (docs/img/screenshots.py): draws real .peeklens files with the lab document
// (js/core/document.ts), which draws with the shared views of js/views.
import { BufferSource, PeeklensView, Results, ZipSource } from "../../../js/core/index";
import { renderSpectrumPlot } from "../../../js/views/index";
// the views timed below: these (js/views) or, with --alias:peeklens-views=..., an older copy to compare with
import { renderNeuronHeatmaps, renderLatentGallery } from "peeklens-views";
import { RankedViews } from "../../../js/widgets/_ranked";
import { CommandRegistry } from "@lumino/commands";
import { renderRankExplorer } from "../../../js/views/index";

async function bytes(url: string): Promise<Uint8Array> {
  return new Uint8Array(await (await fetch(url)).arrayBuffer());
}
async function results(name: string): Promise<Results> {
  return new Results(await ZipSource.open(new BufferSource(await bytes(`/data/${name}`)), name));
}

const w = window as any;
w.openDoc = async (name: string, rank: number) => {
  const view = new PeeklensView(await results(name), {
    siblings: async () => [
      { name: "mnist-10pct.peeklens", open: () => results("mnist-10pct.peeklens") },
      { name: "mnist-10pct-spectrum.peeklens", open: () => results("mnist-10pct-spectrum.peeklens") },
      { name: "mnist-25pct-spectrum.peeklens", open: () => results("mnist-25pct-spectrum.peeklens") },
    ],
  });
  const host = document.getElementById("host")!;
  host.replaceChildren(view.node);
  await view.setRank(rank, true);
  w.view = view;
  return true;
};
w.setRank = async (rank: number) => {
  const t0 = performance.now();
  await w.view.setRank(rank);
  return performance.now() - t0;
};
w.drawCompare = async () => {
  const out = document.querySelector(".pl-lab-compare .pl-lab-compare-out") as HTMLElement;
  const r = await Promise.all(["mnist-10pct.peeklens", "mnist-25pct-spectrum.peeklens", "mnist-10pct-spectrum.peeklens"].map((n) => ({ name: n, open: () => results(n) })));
  await w.view.drawCompare(out, r);
  return true;
};
w.spectrum = async () => {
  const series = [];
  for (const n of ["mnist-25pct-spectrum.peeklens", "mnist-10pct-spectrum.peeklens"]) {
    const r = await results(n);
    const sp = await r.spectrumData(n.replace("-spectrum.peeklens", ""));
    // the entropy ranks are in the file's metadata (the lab document does not pass them yet)
    if (sp) series.push(...sp.series.map((s, i) => ({ ...s, entropyRank: Number(r.meta.entropy_rank?.[i]) })));
  }
  const host = document.getElementById("host")!;
  const box = document.createElement("div");
  host.replaceChildren(box);
  renderSpectrumPlot(box, { series, title: "Singular values of two MNIST networks (semi-log)" });
  return series.length;
};
// time to draw the gallery + heatmaps of a rank from already-read data (the widgets' path)
w.drawTimes = async (name: string, ranks: number[]) => {
  const r = await results(name);
  const out: Record<string, number> = {};
  const host = document.getElementById("host")!;
  for (const k0 of ranks) {
    const k = r.ranks.includes(k0) ? k0 : r.ranks[r.ranks.length - 1];
    const g = await r.latentGallery(k);
    const hm = await r.heatmapData(k);
    const a = document.createElement("div"), b = document.createElement("div");
    host.replaceChildren(a, b);
    const t0 = performance.now();
    renderLatentGallery(a, g!, { factor: 0 });
    a.getBoundingClientRect();
    const t1 = performance.now();
    renderNeuronHeatmaps(b, hm, { factor: 0 });
    b.getBoundingClientRect();
    const t2 = performance.now();
    out[k] = t2 - t0;
    out[`gallery${k}`] = t1 - t0;
    out[`heatmaps${k}`] = t2 - t1;
  }
  return out;
};
// time of a state update (factor change) on drawn views: what a click or the widgets' factor trait costs
w.updateTimes = async (name: string, rank: number) => {
  const r = await results(name);
  const g = await r.latentGallery(rank);
  const hm = await r.heatmapData(rank);
  const a = document.createElement("div"), b = document.createElement("div");
  document.getElementById("host")!.replaceChildren(a, b);
  const gh = renderLatentGallery(a, g!, { factor: 0 });
  const hh = renderNeuronHeatmaps(b, hm, { factor: 0 });
  a.getBoundingClientRect();
  const times: number[] = [];
  for (let f = 1; f < Math.min(rank, 11); f++) {
    const t0 = performance.now();
    gh.update({ factor: f });
    hh.update({ factor: f });
    b.getBoundingClientRect();
    times.push(performance.now() - t0);
  }
  times.sort((x, y) => x - y);
  return { median: times[Math.floor(times.length / 2)], max: times[times.length - 1] };
};
// the widgets' slider path: one drawn view per rank (RankedViews), prerendered; a move swaps them in
w.sliderMoves = async (name: string, moves: number[]) => {
  const r = await results(name);
  const ranks: number[] = r.ranks;
  const gal = new Map<number, any>(), heat = new Map<number, any>();
  for (const k of ranks) { gal.set(k, await r.latentGallery(k)); heat.set(k, await r.heatmapData(k)); }
  const a = document.createElement("div"), b = document.createElement("div");
  document.getElementById("host")!.replaceChildren(a, b);
  const gv = new RankedViews<{ factor: number }>(a, (box, k, st) => renderLatentGallery(box, gal.get(k), st));
  const hv = new RankedViews<{ factor: number }>(b, (box, k, st) => renderNeuronHeatmaps(box, heat.get(k), st));
  for (const k of ranks) { gv.show(k, { factor: 0 }); hv.show(k, { factor: 0 }); }
  const out: { rank: number; ms: number }[] = [];
  for (const i of moves) {
    await new Promise((res) => requestAnimationFrame(() => setTimeout(res, 20)));
    const k = ranks[i % ranks.length];
    const t0 = performance.now();
    gv.show(k, { factor: 0 });
    hv.show(k, { factor: 0 });
    void document.body.offsetHeight; // layout included
    out.push({ rank: k, ms: performance.now() - t0 });
  }
  return out;
};
// JupyterLab's shortcut handling as JupyterLab 4 wires it (Lumino registry, document capture listener):
// does an arrow key on the rank slider still reach the notebook's "move to the next cell" command?
w.luminoSetup = () => {
  const commands = new CommandRegistry();
  const ran: string[] = [];
  commands.addCommand("notebook:move-cursor-down", { execute: () => { ran.push("move-cursor-down"); } });
  commands.addCommand("docmanager:save", { execute: () => { ran.push("save"); } });
  commands.addKeyBinding({ command: "notebook:move-cursor-down", keys: ["ArrowDown"], selector: "body" });
  commands.addKeyBinding({ command: "docmanager:save", keys: ["Accel S"], selector: "body" });
  document.addEventListener("keydown", (ev) => commands.processKeydownEvent(ev), true);
  const host = document.getElementById("host")!;
  const box = document.createElement("div");
  const other = document.createElement("button");
  other.id = "other";
  other.textContent = "elsewhere";
  host.replaceChildren(box, other);
  renderRankExplorer(box, { ranks: [2, 10, 50], rmse: new Float32Array([0.3, 0.2, 0.1]), blockNames: [], blockErrors: new Float32Array(0) }, { rank: 10 });
  w.ran = ran;
  return true;
};
