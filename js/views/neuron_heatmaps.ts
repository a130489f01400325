/** Neuron heatmaps (paper Fig. 9): neurons x factors per layer, spatial maps, utilisation. */
import { BLUES, clear, ensureStyles, fmt, h, imageToRGBA, makeCanvas, putPixels, VIRIDIS } from "./shared";
import type { FactorCallbacks, FactorState, HeatmapData, LayerData, ViewHandle } from "./types";

/** Share of neurons whose loadings are below threshold * (layer max) on every factor. */
export function unusedShare(loadings: Float32Array, rank: number, threshold = 0.01): number {
  const n = rank > 0 ? Math.floor(loadings.length / rank) : 0;
  if (n === 0) return 0;
  let peak = 0;
  for (let i = 0; i < loadings.length; i++) if (loadings[i] > peak) peak = loadings[i];
  if (!(peak > 0)) return 1;
  const cut = threshold * peak;
  let unused = 0;
  for (let i = 0; i < n; i++) {
    let mx = 0;
    for (let r = 0; r < rank; r++) mx = Math.max(mx, loadings[i * rank + r]);
    if (mx < cut) unused++;
  }
  return unused / n;
}

/** Column `factor` of a neurons x rank matrix, folded to C x H x W (dense layers: 1 x 1 x N). */
export function foldFactor(layer: LayerData, rank: number, factor: number): { data: Float32Array; c: number; h: number; w: number } {
  const n = Math.floor(layer.loadings.length / Math.max(1, rank));
  const col = new Float32Array(n);
  for (let i = 0; i < n; i++) col[i] = layer.loadings[i * rank + factor];
  const s = layer.shape;
  if (s.length === 3) return { data: col, c: s[0], h: s[1], w: s[2] };
  if (s.length === 2) return { data: col, c: 1, h: s[0], w: s[1] };
  return { data: col, c: 1, h: 1, w: n };
}

/** Describe neuron `i` of a layer: channel and position for convolutional layers. */
export function describeNeuron(shape: number[], i: number): string {
  if (shape.length === 3) {
    const hw = shape[1] * shape[2];
    const c = Math.floor(i / hw), p = i % hw;
    return `channel ${c}, y ${Math.floor(p / shape[2])}, x ${p % shape[2]}`;
  }
  if (shape.length === 2) return `y ${Math.floor(i / shape[1])}, x ${i % shape[1]}`;
  return `neuron ${i}`;
}

interface LayerParts {
  maps: HTMLElement;
  highlight: HTMLElement;
  rowH: number;
}

function layerMax(l: LayerData): number {
  let m = 0;
  for (let i = 0; i < l.loadings.length; i++) if (l.loadings[i] > m) m = l.loadings[i];
  return m;
}

/**
 * Draw the heatmaps of one factorization into `el`. The factor rows of each layer's matrix can be
 * clicked (calls `callbacks.onFactor`); `handle.update({factor})` redraws the spatial maps of that factor.
 */
export function renderNeuronHeatmaps(
  el: HTMLElement,
  data: HeatmapData,
  state: FactorState,
  callbacks: FactorCallbacks = {},
): ViewHandle<FactorState> {
  ensureStyles(el.ownerDocument);
  clear(el);
  const rank = data.rank;
  const threshold = data.threshold ?? 0.01;
  const root = h("div", "pl-view pl-neuron-heatmaps");
  root.appendChild(h("h4", "", `Neuron heatmaps (rank ${rank})`));
  const readout = h("div", "pl-readout");
  readout.textContent = "hover a map for channel, position and value";
  root.appendChild(readout);
  const body = h("div", "pl-heat");
  root.appendChild(body);
  const parts: LayerParts[] = [];
  const cleanups: (() => void)[] = [];

  for (const layer of data.layers) {
    const n = Math.floor(layer.loadings.length / Math.max(1, rank));
    const sec = h("div", "pl-layer");
    sec.dataset.layer = layer.name;
    sec.appendChild(h("div", "pl-layer-title", `${layer.name}  (${layer.shape.join("×")}, ${n} neurons)`));

    // utilisation
    const share = layer.unusedShare ?? unusedShare(layer.loadings, rank, threshold);
    const util = h("div", "pl-util");
    const barOuter = h("div", "pl-util-bar");
    const barInner = h("div");
    barInner.style.width = `${(100 * share).toFixed(1)}%`;
    barOuter.appendChild(barInner);
    util.append(barOuter, h("span", "pl-util-text", `${fmt(100 * share, 3)}% of neurons unused (below ${fmt(100 * threshold, 2)}% of the layer maximum on every factor)`));
    util.dataset.unused = String(share);
    sec.appendChild(util);

    // neurons x factors matrix: factors as rows, neurons as columns
    const peak = layerMax(layer);
    const cssW = Math.min(620, Math.max(160, n));
    const rowH = Math.max(3, Math.min(10, Math.floor(200 / Math.max(1, rank))));
    const wrap = h("div");
    wrap.style.position = "relative";
    wrap.style.width = `min(${cssW}px, 100%)`;
    const mat = makeCanvas(n, rank, cssW, rowH * rank);
    mat.style.width = "100%";
    mat.style.display = "block";
    mat.className = "pl-matrix";
    mat.style.cursor = "pointer";
    const t = new Float32Array(n * rank);
    for (let i = 0; i < n; i++) for (let r = 0; r < rank; r++) t[r * n + i] = layer.loadings[i * rank + r];
    putPixels(mat, imageToRGBA(t, 0, rank, n, 1, BLUES, 0, peak || 1), n, rank);
    const hl = h("div", "pl-row-highlight");
    Object.assign(hl.style, { position: "absolute", left: "0", width: "100%", boxSizing: "border-box", height: `${rowH}px`, outline: "2px solid #d62728", pointerEvents: "none" });
    wrap.append(mat, hl);
    sec.appendChild(h("div", "pl-muted", "factors (rows) × neurons (columns); click a row to select the factor"));
    sec.appendChild(wrap);
    const where = (ev: MouseEvent) => {
      const rect = mat.getBoundingClientRect();
      const i = Math.min(n - 1, Math.max(0, Math.floor(((ev.clientX - rect.left) / Math.max(1, rect.width)) * n)));
      const r = Math.min(rank - 1, Math.max(0, Math.floor(((ev.clientY - rect.top) / Math.max(1, rect.height)) * rank)));
      return { i, r };
    };
    const onMatMove = (ev: MouseEvent) => {
      const { i, r } = where(ev);
      readout.textContent = `${layer.name} · factor ${r} · ${describeNeuron(layer.shape, i)} · ${fmt(layer.loadings[i * rank + r], 4)}`;
    };
    const onMatClick = (ev: MouseEvent) => {
      const { r } = where(ev);
      apply(r);
      callbacks.onFactor?.(r);
    };
    mat.addEventListener("mousemove", onMatMove);
    mat.addEventListener("click", onMatClick);
    cleanups.push(() => { mat.removeEventListener("mousemove", onMatMove); mat.removeEventListener("click", onMatClick); });

    const maps = h("div", "pl-maps");
    sec.appendChild(maps);
    body.appendChild(sec);
    parts.push({ maps, highlight: hl, rowH });
  }
  el.appendChild(root);

  const drawMaps = (layer: LayerData, part: LayerParts, factor: number) => {
    clear(part.maps);
    part.maps.dataset.factor = String(factor);
    if (factor < 0 || factor >= rank) {
      part.maps.appendChild(h("span", "pl-muted", "select a factor to see its spatial maps"));
      return;
    }
    const f = foldFactor(layer, rank, factor);
    let mx = 0;
    for (let i = 0; i < f.data.length; i++) mx = Math.max(mx, f.data[i]);
    const hw = f.h * f.w;
    const css = f.h === 1 ? Math.min(600, Math.max(120, f.w * 4)) : Math.max(36, Math.min(72, f.w * 4));
    for (let c = 0; c < f.c; c++) {
      const box = h("div", "pl-map");
      const cv = makeCanvas(f.w, f.h, css, f.h === 1 ? 14 : Math.round(css * (f.h / f.w)));
      cv.dataset.channel = String(c);
      putPixels(cv, imageToRGBA(f.data, c * hw, f.h, f.w, 1, VIRIDIS, 0, mx || 1), f.w, f.h);
      const onMove = (ev: MouseEvent) => {
        const rect = cv.getBoundingClientRect();
        const x = Math.min(f.w - 1, Math.max(0, Math.floor(((ev.clientX - rect.left) / Math.max(1, rect.width)) * f.w)));
        const y = Math.min(f.h - 1, Math.max(0, Math.floor(((ev.clientY - rect.top) / Math.max(1, rect.height)) * f.h)));
        const v = f.data[c * hw + y * f.w + x];
        readout.textContent = layer.shape.length === 3
          ? `${layer.name} · factor ${factor} · channel ${c} · y ${y}, x ${x} · ${fmt(v, 4)}`
          : `${layer.name} · factor ${factor} · ${describeNeuron(layer.shape, y * f.w + x)} · ${fmt(v, 4)}`;
      };
      cv.addEventListener("mousemove", onMove);
      box.appendChild(cv);
      if (f.c > 1) box.appendChild(h("span", "", `ch ${c}`));
      part.maps.appendChild(box);
    }
  };

  const apply = (factor: number) => {
    root.dataset.factor = String(factor);
    data.layers.forEach((layer, j) => {
      const p = parts[j];
      p.highlight.style.display = factor >= 0 && factor < rank ? "block" : "none";
      p.highlight.style.top = `${Math.max(0, factor) * p.rowH}px`;
      drawMaps(layer, p, factor);
    });
  };
  apply(state.factor);

  return {
    update(s: FactorState) {
      apply(s.factor);
    },
    destroy() {
      cleanups.forEach((f) => f());
      clear(el);
    },
  };
}
