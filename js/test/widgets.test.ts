import { describe, expect, it } from "vitest";
import * as rankExplorer from "../widgets/rank_explorer";
import * as latentGallery from "../widgets/latent_gallery";
import * as neuronHeatmaps from "../widgets/neuron_heatmaps";
import * as spectrumPlot from "../widgets/spectrum_plot";
import * as compare from "../widgets/compare";
import { f32, i32 } from "../widgets/_model";
import { FakeModel, dv, dvInt, rand } from "./fake_model";

function galleryModel() {
  const fit = (rank: number) => ({
    rank,
    latents: dv(rand(rank * 4 * 4, rank)),
    top: dv(rand(rank * 2 * 16)),
    hist: dvInt(new Array(rank * 3).fill(1)),
    strength: dv(new Array(rank).fill(1 / rank)),
  });
  return new FakeModel({
    ranks: [2, 5], rank: 2, factor: 1, image_shape: [4, 4, 1], top_k: 2, n_classes: 3,
    class_names: ["a", "b", "c"], fits: [fit(2), fit(5)],
  });
}

function heatModel() {
  const fit = (rank: number) => ({ rank, loadings: [dv(rand(2 * 3 * 3 * rank)), dv(rand(4 * rank))], unused: dv([0.1, 0.2]) });
  return new FakeModel({
    ranks: [2, 5], rank: 2, factor: 0, layer_names: ["relu", "fc"], layer_shapes: [[2, 3, 3], [4]],
    threshold: 0.01, fits: [fit(2), fit(5)],
  });
}

describe("binary traits", () => {
  it("decode DataViews without copying, and misaligned ones by copying", () => {
    const a = dv([1.5, -2, 3]);
    const f = f32(a);
    expect(Array.from(f)).toEqual([1.5, -2, 3]);
    expect(f.buffer).toBe(a.buffer);
    const b = dv([4, 5], 2); // byteOffset 2: not float32-aligned
    expect(Array.from(f32(b))).toEqual([4, 5]);
    expect(Array.from(i32(dvInt([7, -1]))!)).toEqual([7, -1]);
    expect(i32(null)).toBeNull();
    expect(f32(undefined).length).toBe(0);
    expect(() => f32(new DataView(new ArrayBuffer(3)))).toThrow(/not float32/);
    expect(() => f32([1, 2] as unknown)).toThrow(/binary float32/);
  });
});

describe("rank explorer widget", () => {
  it("writes the slider's rank to the model and follows the model", () => {
    const model = new FakeModel({ ranks: [10, 20, 30], rank: 10, rmse: dv([0.3, 0.2, 0.1]), block_names: ["x"], block_errors: dv([0.5, 0.4, 0.3]), title: "" });
    const el = document.createElement("div");
    const cleanup = rankExplorer.default.render({ model, el });
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
  it("redraws for a new rank and keeps the factor in range", () => {
    const model = galleryModel();
    const el = document.createElement("div");
    const cleanup = latentGallery.default.render({ model, el });
    expect(el.querySelectorAll(".pl-tile").length).toBe(2);
    expect(el.querySelector(".pl-selected")!.getAttribute("data-factor")).toBe("1");
    model.set("rank", 5);
    expect(el.querySelectorAll(".pl-tile").length).toBe(5);
    (el.querySelectorAll(".pl-tile")[4] as HTMLElement).click();
    expect(model.get("factor")).toBe(4);
    expect(model.saves).toBe(1);
    model.set("rank", 2); // factor 4 is out of range for rank 2: the last factor is shown
    expect(el.querySelector(".pl-selected")!.getAttribute("data-factor")).toBe("1");
    model.set("rank", 7);
    expect(el.textContent).toContain("rank 7 is not in this sweep");
    cleanup();
    expect(model.listeners()).toBe(0);
  });
});

describe("heatmaps widget", () => {
  it("follows rank and factor", () => {
    const model = heatModel();
    const el = document.createElement("div");
    heatmapsRender(model, el);
    expect((el.querySelector("canvas.pl-matrix") as HTMLCanvasElement).height).toBe(2);
    model.set("rank", 5);
    expect((el.querySelector("canvas.pl-matrix") as HTMLCanvasElement).height).toBe(5);
    model.set("factor", 3);
    expect((el.querySelector(".pl-neuron-heatmaps") as HTMLElement).dataset.factor).toBe("3");
    expect((el.querySelector(".pl-util") as HTMLElement).dataset.unused).toBe(String(Math.fround(0.1)));
  });
});

function heatmapsRender(model: FakeModel, el: HTMLElement) {
  return neuronHeatmaps.default.render({ model, el });
}

describe("linked widgets (as the Dashboard links them)", () => {
  it("a slider move in the explorer redraws gallery and heatmaps; a tile click selects the heatmap factor", () => {
    const ex = new FakeModel({ ranks: [2, 5], rank: 2, rmse: dv([0.2, 0.1]), block_names: [], block_errors: dv([]), title: "" });
    const ga = galleryModel();
    const hm = heatModel();
    // what ipywidgets.jslink does in the browser
    ex.on("change:rank", () => { ga.set("rank", ex.get("rank")); hm.set("rank", ex.get("rank")); });
    ga.on("change:factor", () => hm.set("factor", ga.get("factor")));
    const [e1, e2, e3] = [document.createElement("div"), document.createElement("div"), document.createElement("div")];
    rankExplorer.default.render({ model: ex, el: e1 });
    latentGallery.default.render({ model: ga, el: e2 });
    neuronHeatmaps.default.render({ model: hm, el: e3 });
    const input = e1.querySelector("input") as HTMLInputElement;
    input.value = "1";
    input.dispatchEvent(new Event("input"));
    expect(e2.querySelectorAll(".pl-tile").length).toBe(5);
    expect((e3.querySelector("canvas.pl-matrix") as HTMLCanvasElement).height).toBe(5);
    (e2.querySelectorAll(".pl-tile")[3] as HTMLElement).click();
    expect((e3.querySelector(".pl-neuron-heatmaps") as HTMLElement).dataset.factor).toBe("3");
    expect((e3.querySelector(".pl-maps") as HTMLElement).dataset.factor).toBe("3");
  });
});

describe("spectrum and compare widgets", () => {
  it("draw from binary series", () => {
    const model = new FakeModel({ title: "", series: [{ network: "n", layer: "relu", values: dv([5, 1, 0.2]) }] });
    const el = document.createElement("div");
    spectrumPlot.default.render({ model, el });
    expect(el.querySelectorAll("svg.pl-chart").length).toBe(1);
    model.set("series", [...model.get("series"), { network: "m", layer: "fc", values: dv([3, 2]) }]);
    expect(el.querySelectorAll("svg.pl-chart").length).toBe(2);
  });
  it("compare follows the model's rank", () => {
    const net = (name: string) => ({ name, ranks: [2, 3], rmse: dv([0.2, 0.1]), latents: [dv(rand(2 * 9)), dv(rand(3 * 9))], image_shape: [3, 3, 1] });
    const model = new FakeModel({ rank: 2, networks: [net("a"), net("b")], image_shape: [3, 3, 1], series: [] });
    const el = document.createElement("div");
    compare.default.render({ model, el });
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
