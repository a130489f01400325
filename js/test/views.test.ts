import { describe, expect, it, vi } from "vitest";
import { renderRankExplorer } from "../views/rank_explorer";
import { renderLatentGallery } from "../views/latent_gallery";
import { describeNeuron, foldFactor, renderNeuronHeatmaps, unusedShare } from "../views/neuron_heatmaps";
import { groupByLayer, renderSpectrumPlot } from "../views/spectrum_plot";
import { renderCompare, unionRanks } from "../views/compare";
import type { GalleryData, HeatmapData, RankExplorerData } from "../views/types";
import { rand } from "./fake_model";

const explorer = (): RankExplorerData => ({
  ranks: [10, 20, 40],
  rmse: new Float32Array([0.3, 0.2, 0.1]),
  blockNames: ["input:0", "<b>relu</b>"],
  blockErrors: new Float32Array([0.5, 0.4, 0.3, 0.6, 0.5, 0.45]),
});

export function gallery(rank: number, k = 3, withHist = true): GalleryData {
  return {
    rank,
    latents: { data: rand(rank * 4 * 5, rank), count: rank, height: 4, width: 5, channels: 1 },
    topInputs: { data: rand(rank * k * 20, 7), count: rank * k, height: 4, width: 5, channels: 1 },
    topK: k,
    histograms: withHist ? new Int32Array(rank * 3).map((_, i) => i % 5) : null,
    nClasses: withHist ? 3 : 0,
    classNames: ["zero", "<i>one</i>", "two"],
    strength: new Float32Array(rank).fill(1 / rank),
  };
}

export function heat(rank: number): HeatmapData {
  const conv = rand(2 * 3 * 3 * rank, 3); // 2 channels of 3x3
  const dense = new Float32Array(4 * rank);
  dense[0] = 1; // neuron 0 on factor 0; others zero -> 3 of 4 unused
  return {
    rank,
    layers: [
      { name: "relu", shape: [2, 3, 3], loadings: conv },
      { name: "fc <script>", shape: [4], loadings: dense },
    ],
  };
}

describe("rank explorer", () => {
  it("steps through uneven ranks and reports the rank", () => {
    const el = document.createElement("div");
    const onRank = vi.fn();
    const hnd = renderRankExplorer(el, explorer(), { rank: 20 }, { onRank });
    const input = el.querySelector("input.pl-rank-slider") as HTMLInputElement;
    expect(input.max).toBe("2");
    expect(input.value).toBe("1");
    expect(el.querySelector(".pl-rank-value")!.textContent).toBe("20");
    input.value = "2";
    input.dispatchEvent(new Event("input"));
    expect(onRank).toHaveBeenCalledWith(40);
    expect(el.querySelector(".pl-rank-rmse")!.textContent).toBe("RMSE 0.1");
    hnd.update({ rank: 10 });
    expect(input.value).toBe("0");
    expect((el.firstElementChild as HTMLElement).dataset.rank).toBe("10");
    expect(onRank).toHaveBeenCalledTimes(1); // update() does not call back
  });
  it("moves the markers with the rank and shows block names as text", () => {
    const el = document.createElement("div");
    const hnd = renderRankExplorer(el, explorer(), { rank: 10 });
    const marker = el.querySelector(".pl-rmse-chart .pl-marker")!;
    const x10 = Number(marker.getAttribute("x1"));
    hnd.update({ rank: 40 });
    expect(Number(marker.getAttribute("x1"))).toBeGreaterThan(x10);
    expect(el.querySelector("b")).toBeNull();
    expect(el.querySelector(".pl-block-chart")!.textContent).toContain("<b>relu</b>");
    expect(el.querySelectorAll(".pl-block-chart .pl-series").length).toBe(2);
  });
  it("cleans up", () => {
    const el = document.createElement("div");
    renderRankExplorer(el, explorer(), { rank: 10 }).destroy();
    expect(el.childElementCount).toBe(0);
  });
});

describe("latent gallery", () => {
  it("draws one tile per factor with top inputs and a histogram", () => {
    const el = document.createElement("div");
    renderLatentGallery(el, gallery(4), { factor: 1 });
    const tiles = el.querySelectorAll(".pl-tile");
    expect(tiles.length).toBe(4);
    expect(tiles[1].classList.contains("pl-selected")).toBe(true);
    const latent = tiles[0].querySelector("canvas.pl-latent") as HTMLCanvasElement;
    expect([latent.width, latent.height]).toEqual([5, 4]);
    const grid = tiles[0].querySelector("canvas.pl-top") as HTMLCanvasElement;
    expect([grid.width, grid.height]).toEqual([15, 4]); // k = 3: one row
    const hist = tiles[0].querySelector("canvas.pl-hist") as HTMLCanvasElement;
    expect(hist.dataset.counts).toBe("0,1,2");
    expect(hist.title).toBe("labels of the top inputs: zero: 0, <i>one</i>: 1, two: 2");
    expect(el.querySelector("i")).toBeNull(); // class names are text
  });
  it("selects a factor on click and on update", () => {
    const el = document.createElement("div");
    const onFactor = vi.fn();
    const hnd = renderLatentGallery(el, gallery(5), { factor: 0 }, { onFactor });
    (el.querySelectorAll(".pl-tile")[3] as HTMLElement).click();
    expect(onFactor).toHaveBeenCalledWith(3);
    expect(el.querySelectorAll(".pl-selected").length).toBe(1);
    expect(el.querySelector(".pl-selected")!.getAttribute("data-factor")).toBe("3");
    hnd.update({ factor: 2 });
    expect(el.querySelector(".pl-selected")!.getAttribute("data-factor")).toBe("2");
  });
  it("puts more than four top inputs on two rows", () => {
    const el = document.createElement("div");
    renderLatentGallery(el, gallery(2, 8), { factor: 0 });
    const grid = el.querySelector("canvas.pl-top") as HTMLCanvasElement;
    expect([grid.width, grid.height]).toEqual([20, 8]);
  });
  it("has a compact mode and works without labels or inputs", () => {
    const el = document.createElement("div");
    const g = { ...gallery(2, 3, false), topInputs: null, topK: 0 };
    renderLatentGallery(el, g, { factor: -1 }, {}, { compact: true });
    expect(el.querySelectorAll(".pl-tile").length).toBe(2);
    expect(el.querySelector(".pl-hist")).toBeNull();
    expect(el.querySelector("canvas.pl-top")).toBeNull();
    expect(el.querySelector(".pl-selected")).toBeNull();
  });
  it("draws RGB latents", () => {
    const el = document.createElement("div");
    const g = gallery(2);
    g.latents = { data: rand(2 * 4 * 5 * 3), count: 2, height: 4, width: 5, channels: 3 };
    renderLatentGallery(el, g, { factor: 0 });
    expect(el.querySelectorAll("canvas.pl-latent").length).toBe(2);
  });
});

describe("neuron heatmaps", () => {
  it("computes the unused share like peeklens.views.utilisation", () => {
    const h = heat(3);
    expect(unusedShare(h.layers[1].loadings, 3)).toBeCloseTo(0.75);
    expect(unusedShare(new Float32Array(6), 3)).toBe(1);
    const L = new Float32Array([1, 0.005, 0.02, 0, 0.009, 0.009]); // 3 neurons x rank 2
    expect(unusedShare(L, 2)).toBeCloseTo(1 / 3); // only neuron 2 (0.009 < 0.01) unused
  });
  it("folds one factor into channel maps", () => {
    const L = new Float32Array(2 * 2 * 2 * 3).map((_, i) => i); // neurons 8 x rank 3
    const f = foldFactor({ name: "a", shape: [2, 2, 2], loadings: L }, 3, 1);
    expect([f.c, f.h, f.w]).toEqual([2, 2, 2]);
    expect(Array.from(f.data)).toEqual([1, 4, 7, 10, 13, 16, 19, 22]);
    expect(describeNeuron([2, 3, 4], 13)).toBe("channel 1, y 0, x 1");
    expect(describeNeuron([5], 3)).toBe("neuron 3");
  });
  it("draws every layer, its maps for the selected factor and its utilisation", () => {
    const el = document.createElement("div");
    const hnd = renderNeuronHeatmaps(el, heat(4), { factor: 2 });
    const layers = el.querySelectorAll(".pl-layer");
    expect(layers.length).toBe(2);
    const mat = layers[0].querySelector("canvas.pl-matrix") as HTMLCanvasElement;
    expect([mat.width, mat.height]).toEqual([18, 4]); // neurons x factors
    expect(layers[0].querySelectorAll(".pl-maps canvas").length).toBe(2); // channels
    expect(layers[1].querySelectorAll(".pl-maps canvas").length).toBe(1); // dense strip
    expect((layers[0].querySelector(".pl-maps") as HTMLElement).dataset.factor).toBe("2");
    expect(layers[1].querySelector(".pl-util-text")!.textContent).toMatch(/^75% of neurons unused/);
    expect(el.querySelector("script")).toBeNull();
    expect(layers[1].querySelector(".pl-layer-title")!.textContent).toContain("fc <script>");
    hnd.update({ factor: 0 });
    expect((el.firstElementChild as HTMLElement).dataset.factor).toBe("0");
    expect((layers[0].querySelector(".pl-maps") as HTMLElement).dataset.factor).toBe("0");
    expect((layers[0].querySelector(".pl-row-highlight") as HTMLElement).style.top).toBe("0px");
  });
  it("shows channel, position and value on hover, and selects a factor by clicking a row", () => {
    const el = document.createElement("div");
    document.body.appendChild(el);
    const onFactor = vi.fn();
    renderNeuronHeatmaps(el, heat(4), { factor: 1 }, { onFactor });
    const map = el.querySelector(".pl-maps canvas[data-channel='1']") as HTMLCanvasElement;
    map.getBoundingClientRect = () => ({
      left: 0,
      top: 0,
      width: 30,
      height: 30,
      right: 30,
      bottom: 30,
      x: 0,
      y: 0,
      toJSON() {},
    });
    map.dispatchEvent(new MouseEvent("mousemove", { clientX: 25, clientY: 1 }));
    expect(el.querySelector(".pl-readout")!.textContent).toMatch(/^relu · factor 1 · channel 1 · y 0, x 2 · /);
    const mat = el.querySelector("canvas.pl-matrix") as HTMLCanvasElement;
    mat.getBoundingClientRect = () => ({
      left: 0,
      top: 0,
      width: 100,
      height: 40,
      right: 100,
      bottom: 40,
      x: 0,
      y: 0,
      toJSON() {},
    });
    mat.dispatchEvent(new MouseEvent("click", { clientX: 5, clientY: 35 }));
    expect(onFactor).toHaveBeenCalledWith(3);
    el.remove();
  });
  it("uses the unused share given by the kernel when present", () => {
    const el = document.createElement("div");
    const d = heat(2);
    d.layers[0].unusedShare = 0.5;
    renderNeuronHeatmaps(el, d, { factor: 0 });
    expect((el.querySelector(".pl-util") as HTMLElement).dataset.unused).toBe("0.5");
  });
});

describe("spectrum plot", () => {
  const data = {
    series: [
      { network: "25%", layer: "relu", values: new Float32Array([100, 10, 1]) },
      { network: "100%", layer: "relu", values: new Float32Array([200, 20, 2]) },
      { network: "25%", layer: "relu_1", values: new Float32Array([50, 5]) },
    ],
  };
  it("groups series by layer and network", () => {
    expect(groupByLayer(data)).toEqual({ layers: ["relu", "relu_1"], networks: ["25%", "100%"] });
  });
  it("draws one semi-log panel per layer, one line per network", () => {
    const el = document.createElement("div");
    renderSpectrumPlot(el, data);
    const charts = el.querySelectorAll("svg.pl-chart");
    expect(charts.length).toBe(2);
    expect(charts[0].querySelectorAll(".pl-series").length).toBe(2);
    expect(charts[1].querySelectorAll(".pl-series").length).toBe(1);
    // decade ticks on the y axis
    expect(charts[0].textContent).toContain("100");
  });
});

describe("compare", () => {
  const data = {
    networks: [
      { name: "25%", ranks: [2, 4], rmse: new Float32Array([0.3, 0.2]), galleries: [gallery(2), gallery(4)] },
      { name: "100%", ranks: [2, 3], rmse: new Float32Array([0.25, 0.15]), galleries: [gallery(2), gallery(3)] },
    ],
    spectra: null,
  };
  it("unites the ranks", () => {
    expect(unionRanks(data)).toEqual([2, 3, 4]);
  });
  it("shows RMSE curves together and the galleries side by side", () => {
    const el = document.createElement("div");
    const onRank = vi.fn();
    const hnd = renderCompare(el, data, { rank: 2 }, { onRank });
    expect(el.querySelectorAll(".pl-rmse-chart .pl-series").length).toBe(2);
    const cols = el.querySelectorAll(".pl-compare-network");
    expect(cols.length).toBe(2);
    expect(cols[0].querySelectorAll(".pl-tile").length).toBe(2);
    hnd.update({ rank: 4 });
    const cols4 = el.querySelectorAll(".pl-compare-network");
    expect(cols4[0].querySelectorAll(".pl-tile").length).toBe(4);
    expect(cols4[1].textContent).toContain("rank 4 not swept");
    const input = el.querySelector("input.pl-rank-slider") as HTMLInputElement;
    input.value = "1";
    input.dispatchEvent(new Event("input"));
    expect(onRank).toHaveBeenCalledWith(3);
  });
});
