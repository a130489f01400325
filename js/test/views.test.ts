import { beforeEach, describe, expect, it, vi } from "vitest";
import { renderRankExplorer } from "../views/rank_explorer";
import { renderLatentGallery } from "../views/latent_gallery";
import {
  aggregateChannels,
  cellText,
  describeNeuron,
  foldFactor,
  layerViews,
  renderNeuronHeatmaps,
  rowHeight,
  unusedShare,
} from "../views/neuron_heatmaps";
import { colour, CSS, fmt } from "../views/shared";
import { groupByLayer, renderSpectrumPlot } from "../views/spectrum_plot";
import { networkColors, renderCompare, unionRanks } from "../views/compare";
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
  it("shows channel, position and value in a tooltip at the cursor, and selects a factor by clicking a row", () => {
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
    const tip = document.querySelector(".pl-tooltip") as HTMLElement;
    expect(tip.style.display).toBe("block");
    const L = heat(4).layers[0].loadings;
    // channel 1, y 0, x 2 of a 2x3x3 layer is neuron 9 + 2 = 11; factor 1
    expect(Array.from(tip.children).map((c) => c.textContent)).toEqual([
      "relu · factor 1",
      "channel 1 · y 0, x 2",
      `loading ${fmt(L[11 * 4 + 1], 4)}`,
    ]);
    // the tooltip is the only read-out (no hidden copy in the view)
    expect(el.querySelector(".pl-readout")).toBeNull();
    expect(tip.style.left).toBe("39px"); // at the cursor, not at the top of the view
    expect(tip.style.top).toBe("17px");
    map.dispatchEvent(new MouseEvent("mouseleave"));
    expect(tip.style.display).toBe("none");
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
    mat.dispatchEvent(new MouseEvent("mousemove", { clientX: 99, clientY: 15 }));
    expect(Array.from(tip.children).map((c) => c.textContent)).toEqual([
      "relu · factor 1",
      "channel 1, y 2, x 2",
      `loading ${fmt(L[17 * 4 + 1], 4)}`,
    ]);
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

describe("neuron heatmaps: channels, colour bars, rows and keys", () => {
  beforeEach(() => layerViews(document).clear()); // the per-layer choices live for the document
  // 2 channels of 1 x 2 neurons, rank 2: neuron i has loadings [a_i, b_i]
  const small = (): HeatmapData => ({
    rank: 2,
    layers: [{ name: "1", shape: [2, 1, 2], loadings: new Float32Array([1, 2, 3, 0, 0, 5, 4, 1]) }],
  });
  it("aggregates loadings per channel like a hand computation", () => {
    const layer = small().layers[0];
    // channel 0 = neurons 0, 1: mean [2, 1], max [3, 2]; channel 1 = neurons 2, 3: mean [2, 3], max [4, 5]
    expect(Array.from(aggregateChannels(layer, 2, "mean").data)).toEqual([2, 1, 2, 3]);
    expect(Array.from(aggregateChannels(layer, 2, "max").data)).toEqual([3, 2, 4, 5]);
    expect(aggregateChannels(layer, 2, "max").channels).toBe(2);
    // max of all-zero channels is 0 (not -Infinity); dense layers stay per neuron
    expect(
      Array.from(aggregateChannels({ name: "z", shape: [1, 1, 2], loadings: new Float32Array(4) }, 2, "max").data),
    ).toEqual([0, 0]);
    expect(aggregateChannels({ name: "d", shape: [3], loadings: new Float32Array(6) }, 2, "mean").channels).toBe(3);
  });
  it("switches the columns between neurons and channels, with a colour bar of the values shown", () => {
    const el = document.createElement("div");
    document.body.appendChild(el);
    renderNeuronHeatmaps(el, small(), { factor: 0 });
    const sec = el.querySelector(".pl-layer") as HTMLElement;
    const mat = sec.querySelector("canvas.pl-matrix") as HTMLCanvasElement;
    expect(sec.dataset.mode).toBe("neurons"); // 4 neurons fit
    expect([mat.width, mat.height]).toEqual([4, 2]);
    const bar = () => sec.querySelector(".pl-colorbar") as SVGSVGElement;
    expect(bar().dataset.vmax).toBe("5");
    const buttons = Array.from(sec.querySelectorAll(".pl-mode button")) as HTMLButtonElement[];
    expect(buttons.map((b) => b.textContent)).toEqual(["neurons", "channels (mean)", "channels (max)"]);
    buttons[2].click();
    expect(sec.dataset.mode).toBe("max");
    expect(buttons[2].getAttribute("aria-pressed")).toBe("true");
    expect([mat.width, mat.height]).toEqual([2, 2]);
    buttons[1].click();
    expect(bar().dataset.vmax).toBe("3"); // largest channel mean
    expect(sec.querySelector(".pl-axis-x")!.textContent).toBe("channel");
    // the tooltip reads the aggregated value: channel 1, factor 1, mean 3
    mat.getBoundingClientRect = () => ({
      left: 0,
      top: 0,
      width: 100,
      height: 80,
      right: 100,
      bottom: 80,
      x: 0,
      y: 0,
      toJSON() {},
    });
    mat.dispatchEvent(new MouseEvent("mousemove", { clientX: 75, clientY: 60 }));
    const tip = document.querySelector(".pl-tooltip")!;
    expect(Array.from(tip.children).map((c) => c.textContent)).toEqual([
      "layer 1 · factor 1",
      "channel 1",
      "mean over its 2 neurons: 3",
    ]);
    el.remove();
  });
  it("colours by the square root by default, linear on request, matrix, maps and colour bars alike", () => {
    const el = document.createElement("div");
    renderNeuronHeatmaps(el, small(), { factor: 0 });
    const sec = el.querySelector(".pl-layer") as HTMLElement;
    const scales = () =>
      Array.from(sec.querySelectorAll(".pl-colorbar")).map((c) => (c as SVGSVGElement).dataset.scale);
    expect(sec.dataset.scale).toBe("sqrt");
    expect(scales()).toEqual(["sqrt", "sqrt"]); // matrix and maps
    (sec.querySelector(".pl-scale button[data-scale='linear']") as HTMLButtonElement).click();
    expect(sec.dataset.scale).toBe("linear");
    expect(scales()).toEqual(["linear", "linear"]);
    expect((sec.querySelector(".pl-maps") as HTMLElement).dataset.factor).toBe("0"); // maps redrawn for the same factor
  });
  it("opens wide convolutional layers per channel and zooms the neuron view", () => {
    const el = document.createElement("div");
    const L = rand(10 * 12 * 12 * 3, 5);
    renderNeuronHeatmaps(el, { rank: 3, layers: [{ name: "relu", shape: [10, 12, 12], loadings: L }] }, { factor: 0 });
    const sec = el.querySelector(".pl-layer") as HTMLElement;
    expect(sec.dataset.mode).toBe("mean"); // 1,440 neurons would not fit
    (sec.querySelector(".pl-mode button[data-mode='neurons']") as HTMLButtonElement).click();
    const mat = sec.querySelector("canvas.pl-matrix") as HTMLCanvasElement;
    expect(mat.width).toBe(1440);
    const w0 = parseFloat(mat.style.width);
    const zoomIn = sec.querySelector(".pl-zoom button[aria-label='zoom in']") as HTMLButtonElement;
    zoomIn.click();
    zoomIn.click();
    expect(parseFloat(mat.style.width)).toBe(4 * w0);
    expect(sec.querySelector(".pl-zoom-value")!.textContent).toBe("4×");
    // channel ticks along the neurons, none overlapping at this zoom
    const ticks = Array.from(sec.querySelectorAll(".pl-xtick")).map((t) => t.textContent);
    expect(ticks[0]).toBe("ch 0");
    expect(ticks.length).toBe(10);
  });
  it("labels the factor rows with a readable row height", () => {
    expect(rowHeight(2)).toBe(40); // rank 2 is no thin strip
    expect(rowHeight(10)).toBe(32);
    expect(rowHeight(50)).toBe(10);
    const el = document.createElement("div");
    renderNeuronHeatmaps(el, heat(4), { factor: 2 });
    const labels = Array.from(el.querySelector(".pl-rowlabels")!.querySelectorAll("span"));
    expect(labels.map((l) => l.textContent)).toEqual(["0", "1", "2", "3"]);
    expect(labels[2].classList.contains("pl-on")).toBe(true);
    expect(el.querySelector(".pl-axis-y")!.textContent).toBe("factor");
    const el50 = document.createElement("div");
    renderNeuronHeatmaps(el50, { rank: 50, layers: [{ name: "fc", shape: [3], loadings: rand(150) }] }, { factor: 7 });
    const l50 = Array.from(el50.querySelectorAll(".pl-rowlabels span"))
      .map((l) => l.textContent)
      .filter((t) => t);
    expect(l50).toEqual(["0", "5", "7", "10", "15", "20", "25", "30", "35", "40", "45"]); // every fifth and the selected one
  });
  it("steps the factor with the arrow keys on the matrix, keeping the keys from the notebook", () => {
    const el = document.createElement("div");
    const outside = vi.fn();
    el.addEventListener("keydown", outside);
    const onFactor = vi.fn();
    const hnd = renderNeuronHeatmaps(el, heat(4), { factor: 1 }, { onFactor });
    const mat = el.querySelector("canvas.pl-matrix") as HTMLCanvasElement;
    expect(mat.tabIndex).toBe(0);
    expect(mat.getAttribute("aria-label")).toMatch(/arrow up and down select a factor/);
    mat.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown", bubbles: true }));
    expect(onFactor).toHaveBeenLastCalledWith(2);
    mat.dispatchEvent(new KeyboardEvent("keydown", { key: "End", bubbles: true }));
    expect(onFactor).toHaveBeenLastCalledWith(3);
    mat.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown", bubbles: true }));
    expect(onFactor).toHaveBeenLastCalledWith(3); // stays on the last row
    expect(outside).not.toHaveBeenCalled();
    expect((el.firstElementChild as HTMLElement).dataset.factor).toBe("3");
    hnd.destroy();
  });
  it("carries a layer's columns, colours and zoom over to the other ranks' views", () => {
    const a = document.createElement("div"),
      b = document.createElement("div");
    const L = rand(10 * 12 * 12 * 4, 9);
    const data = (rank: number) => ({
      rank,
      layers: [{ name: "relu", shape: [10, 12, 12], loadings: L.subarray(0, 1440 * rank) }],
    });
    renderNeuronHeatmaps(a, data(4), { factor: 0 });
    const hb = renderNeuronHeatmaps(b, data(2), { factor: 0 }); // another rank, drawn ahead of time
    const sec = (el: HTMLElement) => el.querySelector(".pl-layer") as HTMLElement;
    expect([sec(a).dataset.mode, sec(b).dataset.mode]).toEqual(["mean", "mean"]);
    (sec(a).querySelector(".pl-mode button[data-mode='neurons']") as HTMLButtonElement).click();
    (sec(a).querySelector(".pl-scale button[data-scale='linear']") as HTMLButtonElement).click();
    (sec(a).querySelector(".pl-zoom button[aria-label='zoom in']") as HTMLButtonElement).click();
    expect([sec(b).dataset.mode, sec(b).dataset.scale]).toEqual(["neurons", "linear"]);
    expect((sec(b).querySelector("canvas.pl-matrix") as HTMLCanvasElement).width).toBe(1440);
    expect(sec(b).querySelector(".pl-zoom-value")!.textContent).toBe("2×");
    // a view drawn later starts the same way
    const c = document.createElement("div");
    renderNeuronHeatmaps(c, data(3), { factor: 0 });
    expect([sec(c).dataset.mode, sec(c).dataset.scale, sec(c).querySelector(".pl-zoom-value")!.textContent]).toEqual([
      "neurons",
      "linear",
      "2×",
    ]);
    // a destroyed view no longer listens
    hb.destroy();
    (sec(a).querySelector(".pl-mode button[data-mode='max']") as HTMLButtonElement).click();
    expect(sec(c).dataset.mode).toBe("max");
    expect(b.childElementCount).toBe(0);
  });
  it("cellText describes neurons and channels", () => {
    const layer = { name: "4", shape: [2, 3, 3], loadings: new Float32Array(18) };
    expect(cellText(layer, "neurons", 0, 13, 0.5)).toEqual([
      "layer 4 · factor 0",
      "channel 1, y 1, x 1",
      "loading 0.5",
    ]);
    expect(cellText(layer, "max", 0, 1, 2)).toEqual(["layer 4 · factor 0", "channel 1", "max over its 9 neurons: 2"]);
  });
  it("has a save button for the view and for each layer's matrix", () => {
    const el = document.createElement("div");
    renderNeuronHeatmaps(el, heat(2), { factor: 0 });
    expect(el.querySelectorAll(".pl-head .pl-export-png").length).toBe(1);
    expect(el.querySelectorAll(".pl-layer .pl-export-png").length).toBe(2);
    expect(el.querySelector(".pl-layer .pl-export-png")!.getAttribute("aria-label")).toBe(
      "save relu factor matrix as PNG",
    );
  });
});

describe("latent gallery: keyboard, labels, grid", () => {
  it("selects a tile with Enter or Space, moves with the arrows, keeps the keys from the notebook", () => {
    const el = document.createElement("div");
    document.body.appendChild(el);
    const outside = vi.fn();
    el.addEventListener("keydown", outside);
    const onFactor = vi.fn();
    renderLatentGallery(el, gallery(4), { factor: 0 }, { onFactor });
    const tiles = Array.from(el.querySelectorAll(".pl-tile")) as HTMLElement[];
    expect(tiles.every((t) => t.tabIndex === 0 && t.getAttribute("role") === "button")).toBe(true);
    expect(tiles[2].getAttribute("aria-label")).toBe("factor 2, 25 percent of the energy");
    const enter = new KeyboardEvent("keydown", { key: "Enter", bubbles: true, cancelable: true });
    tiles[2].dispatchEvent(enter);
    expect(onFactor).toHaveBeenLastCalledWith(2);
    expect(tiles[2].getAttribute("aria-pressed")).toBe("true");
    const space = new KeyboardEvent("keydown", { key: " ", bubbles: true, cancelable: true });
    tiles[3].dispatchEvent(space);
    expect(onFactor).toHaveBeenLastCalledWith(3);
    expect(space.defaultPrevented).toBe(true); // no page scroll
    tiles[3].focus();
    tiles[3].dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowLeft", bubbles: true, cancelable: true }));
    expect(document.activeElement).toBe(tiles[2]);
    tiles[2].dispatchEvent(new KeyboardEvent("keydown", { key: "Home", bubbles: true, cancelable: true }));
    expect(document.activeElement).toBe(tiles[0]);
    expect(outside).not.toHaveBeenCalled();
    expect(el.querySelector(".pl-gallery")!.hasAttribute("data-pl-keys")).toBe(true);
    el.remove();
  });
  it("explains the energy share and lays the tiles out on a grid that uses the width", () => {
    const el = document.createElement("div");
    renderLatentGallery(el, gallery(50), { factor: -1 });
    const grid = el.querySelector(".pl-gallery") as HTMLElement;
    expect(grid.style.getPropertyValue("--pl-tile-w")).toBe("108px");
    expect(CSS).toMatch(/\.pl-gallery \{ display: grid; grid-template-columns: repeat\(auto-fill/);
    const title = el.querySelector(".pl-tile-title") as HTMLElement;
    expect(title.textContent).toBe("factor 0 · 2%");
    expect(el.querySelector("b")).toBeNull(); // no markup elements: names and labels stay text
    expect(title.title).toContain("energy");
    expect(el.querySelector(".pl-caption")!.textContent).toMatch(/share of the model's energy/);
    expect(el.querySelector(".pl-caption .pl-colorbar")).not.toBeNull(); // what the latent colours mean
    expect(el.querySelector(".pl-head .pl-export-png")!.getAttribute("aria-label")).toBe(
      "save Latent images (rank 50) as PNG",
    );
  });
  it("draws the latent images with the views' one colour table", () => {
    // happy-dom has no canvas: catch the pixels on their way to the canvas
    const put = vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation((() => ({
      putImageData: (img: ImageData) => {
        pixels.push(Array.from(img.data.slice(0, 4)));
      },
      drawImage() {},
      scale() {},
      fillRect() {},
      measureText: () => ({ width: 5 }),
      fillText() {},
    })) as any);
    const pixels: number[][] = [];
    const hadImageData = "ImageData" in globalThis;
    if (!hadImageData)
      (globalThis as any).ImageData = class {
        data: Uint8ClampedArray;
        constructor(w: number, hh: number) {
          this.data = new Uint8ClampedArray(w * hh * 4);
        }
      };
    try {
      const el = document.createElement("div");
      const g = gallery(1, 0, false);
      g.latents.data.fill(0);
      g.topInputs = null;
      renderLatentGallery(el, g, { factor: 0 });
      expect(pixels[0]).toEqual([68, 1, 84, 255]); // viridis at 0 (the old blues were white)
    } finally {
      if (!hadImageData) delete (globalThis as any).ImageData;
      put.mockRestore();
    }
  });
  it("writes class labels at 10 px, names only when they fit", () => {
    const fonts: string[] = [];
    const texts: string[] = [];
    const ctx: any = {
      scale() {},
      fillRect() {},
      drawImage() {},
      putImageData() {},
      measureText: (s: string) => ({ width: s.length * 6 }),
      fillText: (s: string) => texts.push(s),
    };
    Object.defineProperty(ctx, "font", { set: (f: string) => fonts.push(f), get: () => fonts[fonts.length - 1] });
    const spy = vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation((() => ctx) as any);
    try {
      const el = document.createElement("div");
      renderLatentGallery(
        el,
        { ...gallery(1, 0, true), topInputs: null, classNames: ["airplane", "car", "bird"] },
        { factor: 0 },
      );
      expect(fonts).toEqual(["10px sans-serif"]);
      expect(texts).toEqual(["0", "1", "2"]); // "airplane" does not fit a 32 px bar: indices, names in the tooltip
    } finally {
      spy.mockRestore();
    }
  });
});

describe("rank explorer and compare: keys, names, colours, export", () => {
  it("keeps the slider's arrow keys from JupyterLab and labels it", () => {
    const el = document.createElement("div");
    const outside = vi.fn();
    el.addEventListener("keydown", outside);
    renderRankExplorer(el, explorer(), { rank: 20 });
    const input = el.querySelector("input.pl-rank-slider") as HTMLInputElement;
    expect(input.hasAttribute("data-pl-keys")).toBe(true); // see keepKeys
    expect(input.getAttribute("aria-valuetext")).toBe("rank 20");
    for (const key of ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown"]) {
      input.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true }));
    }
    expect(outside).not.toHaveBeenCalled();
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true })); // not ours: let it go
    expect(outside).toHaveBeenCalledTimes(1);
  });
  it("names Sequential blocks with context, explains the block error, and saves both charts", () => {
    const el = document.createElement("div");
    renderRankExplorer(
      el,
      { ...explorer(), blockNames: ["input:0", "1", "4"], blockErrors: new Float32Array(9).fill(0.5) },
      { rank: 10 },
    );
    const legend = Array.from(el.querySelectorAll(".pl-block-chart .pl-legend-item text")).map(
      (t) => t.childNodes[0].textContent,
    );
    expect(legend).toEqual(["input channel 0", "layer 1", "layer 4"]);
    expect(el.querySelector(".pl-caption")!.textContent).toMatch(/relative error per block/);
    expect(el.querySelectorAll(".pl-figure .pl-export-svg").length).toBe(2);
    expect(el.querySelectorAll(".pl-figure .pl-export-png").length).toBe(2);
  });
  it("keeps one colour per network in the RMSE chart, the spectra and the gallery headers", () => {
    const data = {
      networks: [
        { name: "a.peeklens", ranks: [2], rmse: new Float32Array([0.3]), galleries: [gallery(2)] },
        { name: "b.peeklens", ranks: [2], rmse: new Float32Array([0.2]), galleries: [gallery(2)] },
      ],
      spectra: {
        series: [
          // listed b first: by order alone b would take the first colour here
          { network: "b-spectrum.peeklens", layer: "relu", values: new Float32Array([3, 2, 1]) },
          { network: "a.peeklens", layer: "relu", values: new Float32Array([4, 2, 1]) },
          { network: "c", layer: "relu", values: new Float32Array([5, 2, 1]) },
        ],
      },
    };
    expect(networkColors(data)).toEqual({
      "a.peeklens": colour(0),
      "b.peeklens": colour(1),
      "b-spectrum.peeklens": colour(1),
      c: colour(2),
    });
    const el = document.createElement("div");
    renderCompare(el, data, { rank: 2 });
    const rm = Object.fromEntries(
      Array.from(el.querySelectorAll(".pl-rmse-chart .pl-series")).map((s) => [
        s.getAttribute("data-name"),
        s.getAttribute("data-color"),
      ]),
    );
    const sp = Object.fromEntries(
      Array.from(el.querySelectorAll(".pl-spectrum .pl-series")).map((s) => [
        s.getAttribute("data-name"),
        s.getAttribute("data-color"),
      ]),
    );
    expect(sp["a.peeklens"]).toBe(rm["a.peeklens"]);
    expect(sp["b-spectrum.peeklens"]).toBe(rm["b.peeklens"]);
    const sw = Array.from(el.querySelectorAll(".pl-compare-network .pl-swatch")).map(
      (s) => (s as HTMLElement).dataset.color,
    );
    expect(sw).toEqual([rm["a.peeklens"], rm["b.peeklens"]]);
    // every chart can be saved, and the whole comparison as one PNG
    expect(el.querySelectorAll(".pl-figure .pl-export-svg").length).toBe(2);
    expect(el.querySelector(".pl-compare > .pl-head .pl-export-png")).not.toBeNull();
  });
  it("marks and explains each layer's entropy rank when given", () => {
    const el = document.createElement("div");
    renderSpectrumPlot(el, {
      series: [
        { network: "a", layer: "relu", values: new Float32Array([8, 4, 2, 1]), entropyRank: 2.5 },
        { network: "b", layer: "relu", values: new Float32Array([8, 7, 6, 5]), entropyRank: 3.9 },
      ],
    });
    const marks = Array.from(el.querySelectorAll(".pl-entropy-rank"));
    expect(marks.map((m) => Number(m.getAttribute("data-value")))).toEqual([2.5, 3.9]);
    const x = marks.map((m) => Number(m.querySelector("line")!.getAttribute("x1")));
    // index axis 1..4: 2.5 is halfway between the ends, 3.9 near the right end
    const axis = el.querySelector(".pl-axes line")!; // the x axis: left to right
    const left = Number(axis.getAttribute("x1")),
      right = Number(axis.getAttribute("x2"));
    expect(x[0]).toBeCloseTo(left + 0.5 * (right - left), 5);
    expect(x[1]).toBeCloseTo(left + (2.9 / 3) * (right - left), 5);
    expect(marks[0].querySelector("line")!.getAttribute("stroke")).toBe(
      el.querySelector(".pl-series[data-name^='a']")!.getAttribute("data-color"),
    );
    expect(el.querySelector(".pl-legend")!.textContent).toContain("a (entropy rank 2.5)");
    expect(marks[0].querySelector("title")!.textContent).toMatch(/exp\(−Σ pᵢ log pᵢ\)/);
    expect(Array.from(el.querySelectorAll(".pl-caption")).some((c) => /entropy rank/.test(c.textContent!))).toBe(true);
  });
  it("explains the spectrum and takes colours from the caller", () => {
    const el = document.createElement("div");
    renderSpectrumPlot(
      el,
      { series: [{ network: "n", layer: "0", values: new Float32Array([2, 1]) }] },
      { colors: { n: "#123456" } },
    );
    expect(el.querySelector(".pl-series")!.getAttribute("data-color")).toBe("#123456");
    expect(el.querySelector(".pl-caption")!.textContent).toMatch(/singular values/i);
    expect(el.querySelector(".pl-chart-title")!.textContent).toBe("layer 0");
  });
});
