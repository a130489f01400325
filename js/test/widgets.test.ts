import { describe, expect, it } from "vitest";
import * as rankExplorer from "../widgets/rank_explorer";
import * as latentGallery from "../widgets/latent_gallery";
import * as neuronHeatmaps from "../widgets/neuron_heatmaps";
import * as spectrumPlot from "../widgets/spectrum_plot";
import * as compare from "../widgets/compare";
import { FakeModel, dv, settle, sweepPayload } from "./fake_model";

function galleryModel() {
  return new FakeModel({ ranks: [2, 5], rank: 2, factor: 1, hist_k: 5, ...sweepPayload([2, 5]) });
}

function heatModel() {
  return new FakeModel({
    ranks: [2, 5],
    rank: 2,
    factor: 0,
    layer_names: ["relu", "fc"],
    threshold: 0.01,
    ...sweepPayload([2, 5]),
  });
}

function explorerModel(ranks = [10, 20, 30]) {
  const { meta } = sweepPayload(ranks);
  return new FakeModel({ ranks, rank: ranks[0], meta, arrays: {}, title: "" });
}

function spectrumPayload(name: string, layers: Record<string, number[]>) {
  const names = Object.keys(layers);
  const arrays: Record<string, DataView> = {};
  const shapes: Record<string, number[]> = {};
  const dtypes: Record<string, string> = {};
  names.forEach((n, i) => {
    arrays[`sv.${i}`] = dv(layers[n]);
    shapes[`sv.${i}`] = [layers[n].length];
    dtypes[`sv.${i}`] = "<f4";
  });
  const meta = {
    format: "peeklens",
    format_version: 2,
    type: "Spectrum",
    names,
    k: 3,
    values: names.map((_, i) => `sv.${i}`),
    entropy_rank: names.map(() => 1),
    stable_rank: names.map(() => 1),
    method: names.map(() => "exact"),
    info: {},
    shapes,
    dtypes,
  };
  return { name, meta, arrays };
}

describe("widget payloads", () => {
  it("a payload that cannot be read shows a clear error instead of a view", async () => {
    const model = new FakeModel({ ranks: [2], rank: 2, factor: 0, hist_k: 5, meta: { format: "other" }, arrays: {} });
    const el = document.createElement("div");
    await latentGallery.default.render({ model, el });
    expect(el.textContent).toMatch(/peeklens: widget is not a peeklens results file/);
  });
});

describe("rank explorer widget", () => {
  it("writes the slider's rank to the model and follows the model", async () => {
    const model = explorerModel();
    const el = document.createElement("div");
    const cleanup = await rankExplorer.default.render({ model, el });
    expect(el.querySelector(".pl-rank-rmse")!.textContent).toContain("0.01"); // rmse 0.1/rank from the metadata
    const input = el.querySelector("input") as HTMLInputElement;
    input.value = "2";
    input.dispatchEvent(new Event("input"));
    expect(model.get("rank")).toBe(30);
    expect(model.saves).toBe(1);
    model.set("rank", 20);
    expect(input.value).toBe("1");
    expect(el.dataset.redrawMs).toBeDefined();
    cleanup();
    expect(model.listeners()).toBe(0);
  });
});

describe("gallery widget", () => {
  it("derives each rank from the synced results, redraws for a new rank and keeps the factor in range", async () => {
    const model = galleryModel();
    const el = document.createElement("div");
    const cleanup = await latentGallery.default.render({ model, el });
    expect(el.querySelectorAll(".pl-tile").length).toBe(2);
    expect(el.querySelector(".pl-selected")!.getAttribute("data-factor")).toBe("1");
    expect(el.querySelectorAll("canvas.pl-top").length).toBe(2); // thumbnails from the display section
    const counts = (el.querySelector("canvas.pl-hist") as HTMLElement).dataset.counts!.split(",").map(Number);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(5); // hist_k top inputs counted
    model.set("rank", 5);
    await settle();
    expect(el.querySelectorAll(".pl-tile").length).toBe(5);
    (el.querySelectorAll(".pl-tile")[4] as HTMLElement).click();
    expect(model.get("factor")).toBe(4);
    expect(model.saves).toBe(1);
    model.set("rank", 2); // factor 4 is out of range for rank 2: the last factor is shown
    await settle();
    expect(el.querySelector(".pl-selected")!.getAttribute("data-factor")).toBe("1");
    model.set("rank", 7);
    await settle();
    expect(el.textContent).toContain("rank 7 is not in this sweep");
    cleanup();
    expect(model.listeners()).toBe(0);
  });
});

describe("heatmaps widget", () => {
  it("follows rank and factor", async () => {
    const model = heatModel();
    const el = document.createElement("div");
    await heatmapsRender(model, el);
    expect((el.querySelector("canvas.pl-matrix") as HTMLCanvasElement).height).toBe(2);
    expect(Array.from(el.querySelectorAll<HTMLElement>(".pl-layer")).map((l) => l.dataset.layer)).toEqual([
      "relu",
      "fc",
    ]);
    model.set("rank", 5);
    await settle();
    expect((el.querySelector("canvas.pl-matrix") as HTMLCanvasElement).height).toBe(5);
    model.set("factor", 3);
    await settle();
    expect((el.querySelector(".pl-neuron-heatmaps") as HTMLElement).dataset.factor).toBe("3");
    expect(Number((el.querySelector(".pl-util") as HTMLElement).dataset.unused)).toBe(0); // random loadings: all used
  });
});

function heatmapsRender(model: FakeModel, el: HTMLElement) {
  return neuronHeatmaps.default.render({ model, el });
}

describe("linked widgets (as the Dashboard links them)", () => {
  it("a slider move in the explorer redraws gallery and heatmaps; a tile click selects the heatmap factor", async () => {
    const ex = explorerModel([2, 5]);
    const ga = galleryModel();
    const hm = heatModel();
    // what ipywidgets.jslink does in the browser
    ex.on("change:rank", () => {
      ga.set("rank", ex.get("rank"));
      hm.set("rank", ex.get("rank"));
    });
    ga.on("change:factor", () => hm.set("factor", ga.get("factor")));
    const [e1, e2, e3] = [document.createElement("div"), document.createElement("div"), document.createElement("div")];
    await rankExplorer.default.render({ model: ex, el: e1 });
    await latentGallery.default.render({ model: ga, el: e2 });
    await neuronHeatmaps.default.render({ model: hm, el: e3 });
    const input = e1.querySelector("input") as HTMLInputElement;
    input.value = "1";
    input.dispatchEvent(new Event("input"));
    await settle();
    expect(e2.querySelectorAll(".pl-tile").length).toBe(5);
    expect((e3.querySelector("canvas.pl-matrix") as HTMLCanvasElement).height).toBe(5);
    (e2.querySelectorAll(".pl-tile")[3] as HTMLElement).click();
    await settle();
    expect((e3.querySelector(".pl-neuron-heatmaps") as HTMLElement).dataset.factor).toBe("3");
    expect((e3.querySelector(".pl-maps") as HTMLElement).dataset.factor).toBe("3");
  });
});

describe("spectrum and compare widgets", () => {
  it("draw from Spectrum payloads, restricted to some layers", async () => {
    const model = new FakeModel({
      title: "",
      layers: null,
      k: 0,
      spectra: [spectrumPayload("n", { relu: [5, 1, 0.2] })],
    });
    const el = document.createElement("div");
    await spectrumPlot.default.render({ model, el });
    expect(el.querySelectorAll("svg.pl-chart").length).toBe(1);
    model.set("spectra", [...model.get("spectra"), spectrumPayload("m", { fc: [3, 2], relu: [4, 2] })]);
    await settle();
    expect(el.querySelectorAll("svg.pl-chart").length).toBe(2);
    model.set("layers", ["fc"]);
    await settle();
    expect(Array.from(el.querySelectorAll<SVGElement>("svg.pl-chart")).map((s) => s.dataset.layer)).toEqual(["fc"]);
  });
  it("compare follows the model's rank", async () => {
    const net = (name: string) => ({ name, ...sweepPayload([2, 3]) });
    const model = new FakeModel({ rank: 2, networks: [net("a"), net("b")], spectra: [], layers: null });
    const el = document.createElement("div");
    await compare.default.render({ model, el });
    expect(el.querySelectorAll(".pl-compare-network").length).toBe(2);
    expect(el.querySelectorAll(".pl-tile").length).toBe(4);
    model.set("rank", 3);
    expect(el.querySelectorAll(".pl-tile").length).toBe(6);
  });
});

describe("views kept per rank", () => {
  it("swaps the drawn element back in when a rank is shown again, and prerenders the others", async () => {
    const { RankedViews } = await import("../widgets/_ranked");
    const el = document.createElement("div");
    const drawn: number[] = [];
    const updates: number[] = [];
    const views = new RankedViews<{ factor: number }>(el, (box, rank) => {
      drawn.push(rank);
      box.textContent = `rank ${rank}`;
      return { update: (s) => updates.push(s.factor), destroy: () => {} };
    });
    views.show(2, { factor: 0 });
    const first = el.firstElementChild;
    views.show(5, { factor: 0 });
    expect(el.textContent).toBe("rank 5");
    views.show(2, { factor: 1 });
    expect(el.firstElementChild).toBe(first); // not redrawn
    expect(drawn).toEqual([2, 5]);
    expect(updates).toEqual([1]); // the new factor was applied
    views.prerender([2, 5, 7, 9], () => ({ factor: 0 }));
    await new Promise((r) => setTimeout(r, 300));
    expect(drawn).toEqual([2, 5, 7, 9]);
    expect(el.textContent).toBe("rank 2"); // prerendering does not change what is shown
    views.destroy();
    expect(el.childElementCount).toBe(0);
  });
});
