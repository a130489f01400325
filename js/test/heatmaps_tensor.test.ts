/**
 * Neuron heatmaps of tensor-model fits (issue 18: channel x factor matrix plus one spatial map per
 * factor) and of signed, semi-NMF blocks (issue 15: diverging colours around 0), and that matrix
 * fits of non-negative blocks are drawn as before.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { tensorLoadings, utilisation } from "../core/derive";
import { Results } from "../core/results";
import type { FitMeta, Meta, NdArray, Source } from "../core/schema";
import { elementPngBlob } from "../views/export";
import {
  aggregateChannels,
  cellText,
  foldFactor,
  layerUnusedShare,
  neuronLoadings,
  renderNeuronHeatmaps,
  unusedShare,
} from "../views/neuron_heatmaps";
import { CMAP, colorBar, DIVERGING, scaleValues, signedRange } from "../views/shared";
import type { HeatmapData, LayerData } from "../views/types";
import { rand } from "./fake_model";

const RANK = 3;
// a tensor block of shape 4 x 5 x 6: channel factor 4 x 3 (channel 3 all zero), spatial factor 30 x 3
const channelFactor = (): Float32Array => {
  const c = rand(4 * RANK, 11);
  for (let r = 0; r < RANK; r++) c[3 * RANK + r] = 0;
  return c;
};
const spatialFactor = (): Float32Array => rand(30 * RANK, 12);

function tensorLayer(): LayerData {
  return { name: "conv2", shape: [4, 5, 6], loadings: channelFactor(), spatial: spatialFactor() };
}

function signedLayer(): LayerData {
  // neuron 0 strongly negative on factor 0, neuron 5 positive; a mix elsewhere
  const L = new Float32Array(6 * RANK);
  for (let i = 0; i < L.length; i++) L[i] = ((i * 7) % 11) / 11 - 0.5;
  L[0] = -2;
  L[5 * RANK + 1] = 1.5;
  return { name: "mlp.gelu", shape: [6], loadings: L, signed: true };
}

function matrixLayer(): LayerData {
  return { name: "relu", shape: [2, 3, 3], loadings: rand(18 * RANK, 3) };
}

/** Records every putImageData of every canvas (happy-dom has no 2D canvas). */
function recordPixels() {
  const drawn = new Map<HTMLCanvasElement, Uint8ClampedArray>();
  class FakeImageData {
    data: Uint8ClampedArray;
    constructor(
      readonly width: number,
      readonly height: number,
    ) {
      this.data = new Uint8ClampedArray(width * height * 4);
    }
  }
  const hadImageData = "ImageData" in globalThis;
  const RealImageData = (globalThis as any).ImageData;
  (globalThis as any).ImageData = FakeImageData;
  const spy = vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation(function (
    this: HTMLCanvasElement,
  ) {
    const canvas = this;
    return { putImageData: (img: FakeImageData) => drawn.set(canvas, img.data.slice()) } as any;
  } as any);
  return {
    drawn,
    restore() {
      spy.mockRestore();
      if (hadImageData) (globalThis as any).ImageData = RealImageData;
      else delete (globalThis as any).ImageData;
    },
  };
}

const pixel = (data: Uint8ClampedArray, i: number) => Array.from(data.slice(i * 4, i * 4 + 3));
const lutAt = (lut: Uint8ClampedArray, k: number) => Array.from(lut.slice(k * 3, k * 3 + 3));

afterEach(() => {
  document.body.innerHTML = "";
});

describe("tensor model layers", () => {
  it("draws a channel x factor matrix and one H x W spatial map per factor", () => {
    const el = document.createElement("div");
    const data: HeatmapData = { rank: RANK, layers: [tensorLayer(), matrixLayer()] };
    renderNeuronHeatmaps(el, data, { factor: 1 });
    const [sec, matSec] = Array.from(el.querySelectorAll<HTMLElement>(".pl-layer"));
    expect(sec.dataset.model).toBe("tensor");
    expect(matSec.dataset.model).toBeUndefined();
    const mat = sec.querySelector("canvas.pl-matrix") as HTMLCanvasElement;
    expect([mat.width, mat.height]).toEqual([4, RANK]); // channels x factors, not 120 neurons
    expect(sec.querySelector(".pl-layer-title")!.textContent).toContain("tensor model: 4 channels × 5×6 positions");
    expect(sec.querySelector(".pl-axis-x")!.textContent).toBe("channel (the CP model's channel factor)");
    expect(sec.querySelector(".pl-mode")).toBeNull(); // no neurons / channel mean / max toggle
    expect(sec.querySelectorAll(".pl-xtick").length).toBe(4); // one tick per channel
    const maps = Array.from(sec.querySelectorAll<HTMLCanvasElement>(".pl-maps canvas.pl-spatial"));
    expect(maps.length).toBe(RANK);
    for (const cv of maps) expect([cv.width, cv.height]).toEqual([6, 5]); // W x H of the layer
    expect(maps.map((cv) => cv.dataset.factor)).toEqual(["0", "1", "2"]);
    const labels = Array.from(sec.querySelectorAll(".pl-factor-map > span")).map((s) => s.textContent);
    expect(labels).toEqual(["factor 0", "factor 1", "factor 2"]);
    // the colour bar of the maps and of the matrix
    expect(sec.querySelectorAll(".pl-maps svg.pl-colorbar").length).toBe(1);
    expect(sec.querySelector(".pl-maps-title")!.textContent).toContain("factor 1 outlined");
    expect(el.querySelector(".pl-caption-tensor")).not.toBeNull();
    expect(el.querySelector(".pl-caption-signed")).toBeNull();
  });

  it("highlights the selected factor, moves it on update and selects a factor by clicking its map", () => {
    const el = document.createElement("div");
    const onFactor = vi.fn();
    const hnd = renderNeuronHeatmaps(el, { rank: RANK, layers: [tensorLayer()] }, { factor: 2 }, { onFactor });
    const outlined = () =>
      Array.from(el.querySelectorAll<HTMLElement>(".pl-factor-map"))
        .filter((box) => box.style.border.includes("#d62728") || box.style.borderColor === "rgb(214, 39, 40)")
        .map((box) => box.dataset.factor);
    expect(outlined()).toEqual(["2"]);
    expect((el.querySelector(".pl-row-highlight") as HTMLElement).style.top).toBe(`${2 * 40}px`);
    hnd.update({ factor: 0 });
    expect(outlined()).toEqual(["0"]);
    expect(el.querySelector(".pl-factor-map span.pl-on")!.textContent).toBe("factor 0");
    (el.querySelector("canvas.pl-spatial[data-factor='1']") as HTMLCanvasElement).dispatchEvent(
      new MouseEvent("click"),
    );
    expect(onFactor).toHaveBeenCalledWith(1);
    expect(outlined()).toEqual(["1"]);
    hnd.update({ factor: -1 });
    expect(outlined()).toEqual([]);
    hnd.destroy();
  });

  it("reads out channels in the matrix and positions in the maps", () => {
    const el = document.createElement("div");
    document.body.appendChild(el);
    const layer = tensorLayer();
    renderNeuronHeatmaps(el, { rank: RANK, layers: [layer] }, { factor: 0 });
    const tip = () => Array.from(document.querySelectorAll(".pl-tooltip div")).map((d) => d.textContent);
    const box = (w: number, hh: number) => () => ({
      left: 0,
      top: 0,
      width: w,
      height: hh,
      right: w,
      bottom: hh,
      x: 0,
      y: 0,
      toJSON() {},
    });
    const mat = el.querySelector("canvas.pl-matrix") as HTMLCanvasElement;
    mat.getBoundingClientRect = box(40, 30);
    mat.dispatchEvent(new MouseEvent("mousemove", { clientX: 25, clientY: 15 })); // channel 2, factor 1
    expect(tip()[1]).toBe("channel 2");
    expect(tip()[2]).toBe(cellText(layer, "neurons", 1, 2, layer.loadings[2 * RANK + 1])[2]);
    expect(tip()[2]).toMatch(/^channel loading /);
    const map = el.querySelector("canvas.pl-spatial[data-factor='2']") as HTMLCanvasElement;
    map.getBoundingClientRect = box(60, 50);
    map.dispatchEvent(new MouseEvent("mousemove", { clientX: 35, clientY: 45 })); // x 3, y 4
    expect(tip()[0]).toBe("conv2 · factor 2");
    expect(tip()[1]).toBe("y 4, x 3");
    expect(tip()[2]).toContain(String(Number(layer.spatial![(4 * 6 + 3) * RANK + 2].toPrecision(4))));
  });

  it("computes a neuron's loading as channel x position, as peeklens.views does", () => {
    const layer = tensorLayer();
    const N = neuronLoadings(layer, RANK);
    expect(N.length).toBe(120 * RANK);
    const C = layer.loadings,
      S = layer.spatial!;
    // neuron (channel 2, y 1, x 4) = row 2 * 30 + 10
    expect(N[(2 * 30 + 10) * RANK + 1]).toBeCloseTo(C[2 * RANK + 1] * S[10 * RANK + 1], 6);
    const core = tensorLoadings({ rows: 4, cols: RANK, data: C }, { rows: 30, cols: RANK, data: S });
    expect(Array.from(core.data)).toEqual(Array.from(N));
    const f = foldFactor(layer, RANK, 2);
    expect([f.c, f.h, f.w]).toEqual([4, 5, 6]);
    expect(f.data[30 + 7]).toBeCloseTo(C[1 * RANK + 2] * S[7 * RANK + 2], 6);
    // channel 3 is all zero: its 30 of 120 neurons are unused
    expect(layerUnusedShare(layer, RANK)).toBeCloseTo(unusedShare(N, RANK), 9);
    expect(layerUnusedShare(layer, RANK)).toBeGreaterThanOrEqual(0.25);
    const el = document.createElement("div");
    renderNeuronHeatmaps(el, { rank: RANK, layers: [layer] }, { factor: 0 });
    expect(Number((el.querySelector(".pl-util") as HTMLElement).dataset.unused)).toBeCloseTo(unusedShare(N, RANK), 9);
  });

  it("paints the tensor maps into the view's PNG export", async () => {
    const el = document.createElement("div");
    document.body.appendChild(el);
    renderNeuronHeatmaps(el, { rank: RANK, layers: [tensorLayer()] }, { factor: 0 });
    const drawn: unknown[] = [];
    const ctx: any = new Proxy(
      {},
      {
        get: (t: any, p: string) =>
          p in t ? t[p] : (...args: unknown[]) => (p === "drawImage" ? drawn.push(args[0]) : undefined),
        set: (t: any, p: string, v: unknown) => ((t[p] = v), true),
      },
    );
    const gc = vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation((() => ctx) as any);
    const tb = vi
      .spyOn(HTMLCanvasElement.prototype, "toBlob")
      .mockImplementation((cb: BlobCallback) =>
        cb(new Blob([new Uint8Array([137, 80, 78, 71])], { type: "image/png" })),
      );
    const RealImage = globalThis.Image;
    (globalThis as any).Image = class {
      onload: any;
      set src(_v: string) {
        setTimeout(() => this.onload?.(), 0);
      }
    };
    const rect = () => ({ left: 0, top: 0, width: 50, height: 40, right: 50, bottom: 40, x: 0, y: 0, toJSON() {} });
    el.querySelectorAll("*").forEach((e) => ((e as HTMLElement).getBoundingClientRect = rect));
    try {
      const blob = await elementPngBlob(el.firstElementChild as HTMLElement);
      expect(blob.type).toBe("image/png");
      const spatial = Array.from(el.querySelectorAll("canvas.pl-spatial"));
      for (const cv of spatial) expect(drawn).toContain(cv);
      expect(drawn).toContain(el.querySelector("canvas.pl-matrix"));
    } finally {
      gc.mockRestore();
      tb.mockRestore();
      (globalThis as any).Image = RealImage;
    }
  });
});

describe("signed layers", () => {
  it("use the diverging map over a range symmetric around 0, with a colour bar from negative to positive", () => {
    const rec = recordPixels();
    try {
      const el = document.createElement("div");
      const layer = signedLayer();
      renderNeuronHeatmaps(el, { rank: RANK, layers: [layer] }, { factor: 0 });
      const sec = el.querySelector(".pl-layer") as HTMLElement;
      expect(sec.dataset.signed).toBe("true");
      expect(sec.querySelector(".pl-util-text")!.textContent).toContain("|loading| below 1% of the layer's largest");
      expect(el.querySelector(".pl-caption-signed")).not.toBeNull();
      const mat = sec.querySelector("canvas.pl-matrix") as HTMLCanvasElement;
      expect(mat.dataset.cmap).toBe("diverging");
      // the matrix's colour bar spans -2 .. 2 and is labelled on both sides of 0
      const bar = sec.querySelector(".pl-cb-below svg.pl-colorbar, .pl-cb-box svg.pl-colorbar") as SVGSVGElement;
      expect(Number(bar.dataset.vmin)).toBeCloseTo(-2, 6);
      expect(Number(bar.dataset.vmax)).toBeCloseTo(2, 6);
      const ticks = Array.from(bar.querySelectorAll(".pl-cb-tick")).map((t) => Number(t.getAttribute("data-value")));
      expect(Math.min(...ticks)).toBeLessThan(0);
      expect(Math.max(...ticks)).toBeGreaterThan(0);
      expect(ticks).toContain(0);
      // its gradient runs from the diverging table's blue to its red
      const stops = Array.from(bar.querySelectorAll("stop")).map((s) => s.getAttribute("stop-color"));
      expect(stops[0]).toBe(`rgb(${lutAt(DIVERGING, 0).join(",")})`);
      expect(stops[stops.length - 1]).toBe(`rgb(${lutAt(DIVERGING, 255).join(",")})`);
      // pixels: the default scale is √; the most negative loading is the deepest blue, 0 white-ish
      const px = rec.drawn.get(mat)!;
      const cols = 6;
      expect(pixel(px, 0 * cols + 0)).toEqual(lutAt(DIVERGING, 0)); // neuron 0, factor 0: -2
      const pos = pixel(px, 1 * cols + 5); // neuron 5, factor 1: +1.5
      expect(pos[0]).toBeGreaterThan(pos[2]); // red
      const neg = pixel(px, 0);
      expect(neg[2]).toBeGreaterThan(neg[0]); // blue
      // the spatial strip of the selected factor is diverging too, its bar symmetric
      const strip = sec.querySelector(".pl-maps canvas") as HTMLCanvasElement;
      expect(pixel(rec.drawn.get(strip)!, 0)).toEqual(lutAt(DIVERGING, 0));
      const mapBar = sec.querySelector(".pl-maps svg.pl-colorbar") as SVGSVGElement;
      expect(Number(mapBar.dataset.vmin)).toBeCloseTo(-Number(mapBar.dataset.vmax), 6);
      expect(Number(mapBar.dataset.vmin)).toBeLessThan(0);
    } finally {
      rec.restore();
    }
  });

  it("count strongly negative neurons as used and keep the sign in channel maxima", () => {
    const L = new Float32Array([-5, 0, 0.01, -0.01, 2, 1]); // 3 neurons x 2 factors
    expect(unusedShare(L, 2)).toBeCloseTo(1 / 3, 9); // only neuron 1 (below 1 % of 5)
    expect(utilisation({ rows: 3, cols: 2, data: L }, [3]).unusedShare).toBeCloseTo(1 / 3, 9);
    const conv: LayerData = { name: "c", shape: [1, 1, 3], loadings: L, signed: true };
    expect(Array.from(aggregateChannels(conv, 2, "max").data)).toEqual([-5, 1]);
    expect(signedRange(new Float32Array([0.5, -3, 1]))).toEqual([-3, 3]);
    expect(signedRange(new Float32Array(2))).toEqual([-1, 1]);
    expect(Array.from(scaleValues(new Float32Array([-4, 9]), "sqrt", true))).toEqual([-2, 3]);
  });

  it("label both ends and 0 of a signed colour bar, other ticks only where they have room", () => {
    for (const scale of ["linear", "sqrt"] as const) {
      const bar = colorBar(-16.2, 16.2, { vertical: true, length: 200, scale, lut: DIVERGING });
      const ticks = Array.from(bar.querySelectorAll(".pl-cb-tick"));
      const labels = ticks.map((t) => t.querySelector("text")!.textContent);
      expect(labels[0]).toBe("-16.2");
      expect(labels[labels.length - 1]).toBe("16.2");
      expect(labels).toContain("0");
      const ys = ticks.map((t) => Number(t.querySelector("line")!.getAttribute("y1"))).sort((a, b) => a - b);
      for (let i = 1; i < ys.length; i++) expect(ys[i] - ys[i - 1]).toBeGreaterThanOrEqual(14 - 1e-9);
    }
  });

  it("draw a signed square-root colour bar with 0 in the middle", () => {
    const bar = colorBar(-4, 4, { scale: "sqrt", lut: DIVERGING, length: 200 });
    const zero = Array.from(bar.querySelectorAll(".pl-cb-tick")).find((t) => t.getAttribute("data-value") === "0");
    expect(zero).toBeDefined();
    const x = Number(zero!.querySelector("line")!.getAttribute("x1"));
    const rect = bar.querySelector("rect")!;
    const x0 = Number(rect.getAttribute("x")),
      w = Number(rect.getAttribute("width"));
    expect(x).toBeCloseTo(x0 + w / 2, 6);
  });
});

describe("matrix fits of non-negative blocks are unchanged", () => {
  it("keep viridis from 0, neurons as columns, per-channel maps and no extra captions", () => {
    const rec = recordPixels();
    try {
      const el = document.createElement("div");
      const layer = matrixLayer();
      renderNeuronHeatmaps(el, { rank: RANK, layers: [layer] }, { factor: 1 });
      const sec = el.querySelector(".pl-layer") as HTMLElement;
      expect(sec.dataset.model).toBeUndefined();
      expect(sec.dataset.signed).toBeUndefined();
      expect(sec.querySelector(".pl-layer-title")!.textContent).toBe("relu  (2×3×3, 18 neurons)");
      expect(el.querySelectorAll(".pl-caption").length).toBe(1);
      const mat = sec.querySelector("canvas.pl-matrix") as HTMLCanvasElement;
      expect([mat.width, mat.height]).toEqual([18, RANK]);
      expect(mat.dataset.cmap).toBe("viridis");
      expect(sec.querySelector(".pl-mode")).not.toBeNull();
      expect(sec.querySelectorAll(".pl-maps canvas[data-channel]").length).toBe(2);
      expect(sec.querySelector("canvas.pl-spatial")).toBeNull();
      const bar = sec.querySelector(".pl-cb-below svg.pl-colorbar, .pl-cb-box svg.pl-colorbar") as SVGSVGElement;
      expect(Number(bar.dataset.vmin)).toBe(0);
      // the largest loading is viridis' top colour, a zero loading its bottom
      const L = layer.loadings;
      let at = 0;
      for (let i = 1; i < L.length; i++) if (L[i] > L[at]) at = i;
      const px = rec.drawn.get(mat)!;
      const neuron = Math.floor(at / RANK),
        r = at % RANK;
      expect(pixel(px, r * 18 + neuron)).toEqual(lutAt(CMAP, 255));
    } finally {
      rec.restore();
    }
  });
});

/** An in-memory payload (the schema `pl.save` writes) of a two-rank sweep. */
function payload(tensor: boolean, signed: boolean | "settings"): Source {
  const arrays = new Map<string, NdArray>();
  const put = (key: string, shape: number[], data: Float32Array) => {
    arrays.set(key, { shape, dtype: "<f4", data } as NdArray);
    return key;
  };
  const fits: Record<string, FitMeta> = {};
  for (const rank of [2, 3]) {
    const p = `r${rank}.`;
    const conv = tensor ? rand(4 * rank, rank) : rand(120 * rank, rank);
    const h = rand(6 * rank, 5 + rank).map((v) => v - 0.5);
    fits[String(rank)] = {
      rank,
      names: ["input:0", "conv2", "h"],
      F: put(`${p}F`, [10, rank], rand(10 * rank, 1)),
      W: [
        put(`${p}W.0`, [16, rank], rand(16 * rank, 2)),
        put(`${p}W.1`, [tensor ? 4 : 120, rank], conv),
        put(`${p}W.2`, [6, rank], h),
      ],
      objective: put(`${p}objective`, [1], new Float32Array([1])),
      errors: [0.1, 0.2, 0.3],
      rmse: 0.1,
      n_iter: 1,
      converged: true,
      seconds: 0,
      settings: signed === "settings" ? { signed: ["h"] } : {},
      blocks: [
        { shape: [4, 4], kind: "input", n_features: 16, ...(signed === "settings" ? {} : { signed: false }) },
        { shape: [4, 5, 6], kind: "layer", n_features: 120, ...(signed === "settings" ? {} : { signed: false }) },
        { shape: [6], kind: "layer", n_features: 6, ...(signed === true ? { signed: true } : {}) },
      ],
      spatial: tensor ? { "1": put(`${p}S.1`, [30, rank], rand(30 * rank, 9)) } : null,
    };
  }
  const meta = { format: "peeklens", format_version: 2, type: "Sweep", fits, labels: null, inputs: null } as Meta;
  return {
    name: "memory",
    meta,
    getArray: async (key: string) => {
      const a = arrays.get(key);
      if (!a) throw new Error(`no array ${key}`);
      return a;
    },
  };
}

describe("results: heatmap data of tensor and signed fits", () => {
  it("carries a tensor block's channel and spatial factors and its unused share over channel x position", async () => {
    const res = new Results(payload(true, true));
    const d = await res.heatmapData(3);
    const conv = d.layers.find((l) => l.name === "conv2")!;
    expect(conv.loadings.length).toBe(4 * 3);
    expect(conv.spatial!.length).toBe(30 * 3);
    const N = neuronLoadings(conv, 3);
    expect(conv.unusedShare).toBeCloseTo(unusedShare(N, 3), 9);
    const h = d.layers.find((l) => l.name === "h")!;
    expect(h.signed).toBe(true);
    expect(h.spatial).toBeUndefined();
    expect(conv.signed).toBeUndefined();
    const S = await res.spatial(2, "conv2");
    expect([S!.rows, S!.cols]).toEqual([30, 2]);
    expect(await res.spatial(2, "h")).toBeNull();
  });

  it("reads the signed flag from settings in files whose blocks lack it; matrix fits have no spatial factor", async () => {
    const res = new Results(payload(false, "settings"));
    expect(res.isSigned(2, "h")).toBe(true);
    expect(res.isSigned(2, "conv2")).toBe(false);
    const d = await res.heatmapData(2);
    const conv = d.layers.find((l) => l.name === "conv2")!;
    expect(conv.spatial).toBeUndefined();
    expect(conv.loadings.length).toBe(120 * 2);
    expect(d.layers.find((l) => l.name === "h")!.signed).toBe(true);
    const plain = new Results(payload(false, false));
    expect((await plain.heatmapData(2)).layers.every((l) => l.signed === undefined)).toBe(true);
  });
});
