/** Neuron heatmaps (paper Fig. 9): neurons x factors per layer, spatial maps, utilisation. */
import { elementPngBlob, exportButtons, viewExport } from "./export";
import {
  caption,
  clear,
  CMAP,
  type ColorScale,
  DIVERGING,
  scaleValues,
  colorBar,
  displayName,
  ensureStyles,
  fmt,
  FONT,
  GLOSSARY,
  h,
  imageToRGBA,
  keepKeys,
  makeCanvas,
  putPixels,
  signedRange,
  textWidth,
  Tooltip,
} from "./shared";
import type { FactorCallbacks, FactorState, HeatmapData, LayerData, ViewHandle } from "./types";

/** Share of neurons whose loadings' magnitudes are below threshold * (layer's largest magnitude) on every factor. */
export function unusedShare(loadings: Float32Array, rank: number, threshold = 0.01): number {
  const n = rank > 0 ? Math.floor(loadings.length / rank) : 0;
  if (n === 0) return 0;
  let peak = 0;
  for (let i = 0; i < loadings.length; i++) if (Math.abs(loadings[i]) > peak) peak = Math.abs(loadings[i]);
  if (!(peak > 0)) return 1;
  const cut = threshold * peak;
  let unused = 0;
  for (let i = 0; i < n; i++) {
    let mx = 0;
    for (let r = 0; r < rank; r++) mx = Math.max(mx, Math.abs(loadings[i * rank + r]));
    if (mx < cut) unused++;
  }
  return unused / n;
}

/** Whether a layer is a tensor block of the tensor model (channel factor in `loadings`, spatial factor in `spatial`). */
export function isTensor(layer: LayerData): boolean {
  return !!layer.spatial && layer.shape.length === 3;
}

/**
 * A layer's neuron x rank loadings, row-major: `loadings` itself, or for a tensor block the products
 * channel x position (row `c * H·W + p` = C[c, :] * S[p, :], as `peeklens.views.neuron_factor_matrix`).
 */
export function neuronLoadings(layer: LayerData, rank: number): Float32Array {
  if (!isTensor(layer) || !layer.spatial) return layer.loadings;
  const C = layer.loadings,
    S = layer.spatial;
  const nc = Math.floor(C.length / Math.max(1, rank)),
    np = Math.floor(S.length / Math.max(1, rank));
  const out = new Float32Array(nc * np * rank);
  for (let c = 0; c < nc; c++)
    for (let p = 0; p < np; p++)
      for (let r = 0; r < rank; r++) out[(c * np + p) * rank + r] = C[c * rank + r] * S[p * rank + r];
  return out;
}

/** The unused share of a layer: the one given, else computed over its neurons (tensor blocks: channel x position). */
export function layerUnusedShare(layer: LayerData, rank: number, threshold = 0.01): number {
  return layer.unusedShare ?? unusedShare(neuronLoadings(layer, rank), rank, threshold);
}

/** Column `factor` of a neurons x rank matrix, folded to C x H x W (dense layers: 1 x 1 x N). */
export function foldFactor(
  layer: LayerData,
  rank: number,
  factor: number,
): { data: Float32Array; c: number; h: number; w: number } {
  const L = neuronLoadings(layer, rank);
  const n = Math.floor(L.length / Math.max(1, rank));
  const col = new Float32Array(n);
  for (let i = 0; i < n; i++) col[i] = L[i * rank + factor];
  const s = layer.shape;
  if (s.length === 3) return { data: col, c: s[0], h: s[1], w: s[2] };
  if (s.length === 2) return { data: col, c: 1, h: s[0], w: s[1] };
  return { data: col, c: 1, h: 1, w: n };
}

/** Describe neuron `i` of a layer: channel and position for convolutional layers. */
export function describeNeuron(shape: number[], i: number): string {
  if (shape.length === 3) {
    const hw = shape[1] * shape[2];
    const c = Math.floor(i / hw),
      p = i % hw;
    return `channel ${c}, y ${Math.floor(p / shape[2])}, x ${p % shape[2]}`;
  }
  if (shape.length === 2) return `y ${Math.floor(i / shape[1])}, x ${i % shape[1]}`;
  return `neuron ${i}`;
}

/** What the columns of a layer's matrix are: every neuron, or one column per channel. */
export type ColumnMode = "neurons" | "mean" | "max";

/**
 * Loadings of a convolutional layer ([C, H, W]) aggregated per channel: a C x rank matrix
 * (row-major, like `loadings`) of the mean or the maximum over each channel's H x W neurons (for a
 * signed layer, "max" is the loading of largest magnitude, with its sign).
 * Layers without channels are returned unchanged (one "channel" per neuron).
 */
export function aggregateChannels(
  layer: LayerData,
  rank: number,
  how: "mean" | "max",
): { data: Float32Array; channels: number } {
  const n = Math.floor(layer.loadings.length / Math.max(1, rank));
  if (layer.shape.length !== 3) return { data: layer.loadings.slice(0, n * rank), channels: n };
  const C = layer.shape[0],
    hw = layer.shape[1] * layer.shape[2];
  const out = new Float32Array(C * rank);
  const L = layer.loadings;
  for (let c = 0; c < C; c++) {
    for (let p = 0; p < hw; p++) {
      const base = (c * hw + p) * rank;
      for (let r = 0; r < rank; r++) {
        const v = L[base + r];
        if (how === "max") {
          const better = layer.signed ? Math.abs(v) > Math.abs(out[c * rank + r]) : v > out[c * rank + r];
          if (p === 0 || better) out[c * rank + r] = v;
        } else out[c * rank + r] += v;
      }
    }
    if (how === "mean") for (let r = 0; r < rank; r++) out[c * rank + r] /= hw;
  }
  return { data: out, channels: C };
}

/** Height of one factor row of the matrix in CSS pixels: tall enough to read and to click. */
export function rowHeight(rank: number): number {
  return Math.max(10, Math.min(40, Math.round(320 / Math.max(1, rank))));
}

/** Width of the matrix when it fits (CSS px); zoom multiplies it and the box scrolls. */
const FIT_WIDTH = 640;

/** Read-out of one matrix cell, as the tooltip shows it (also used by tests). */
export function cellText(layer: LayerData, mode: ColumnMode, factor: number, col: number, value: number): string[] {
  const head = `${displayName(layer.name)} · factor ${factor}`;
  if (isTensor(layer)) return [head, `channel ${col}`, `channel loading ${fmt(value, 4)}`];
  if (mode === "neurons") return [head, describeNeuron(layer.shape, col), `loading ${fmt(value, 4)}`];
  const hw = layer.shape.length === 3 ? layer.shape[1] * layer.shape[2] : 1;
  return [head, `channel ${col}`, `${mode} over its ${hw} neurons: ${fmt(value, 4)}`];
}

/** How a layer's matrix is shown; kept per document and layer name so every rank shows it the same way. */
export interface LayerView {
  mode: ColumnMode;
  scale: ColorScale;
  zoom: number;
}

const PREFS_EVENT = "peeklens-heatmap-view";
const prefsByDoc = new WeakMap<Document, Map<string, LayerView>>();

/** The view settings chosen for each layer in `doc` (columns, colours, zoom). */
export function layerViews(doc: Document = document): Map<string, LayerView> {
  let m = prefsByDoc.get(doc);
  if (!m) {
    m = new Map();
    prefsByDoc.set(doc, m);
  }
  return m;
}

interface LayerParts {
  scale: () => ColorScale;
  maps: HTMLElement;
  mapsBar: HTMLElement;
  highlight: HTMLElement;
  labels: HTMLElement[];
  rowH: number;
}

/**
 * Draw the heatmaps of one factorization into `el`. The factor rows of each layer's matrix can be
 * clicked or stepped with the arrow keys (calls `callbacks.onFactor`); `handle.update({factor})`
 * moves the row highlight and redraws the spatial maps of that factor (nothing else).
 */
export function renderNeuronHeatmaps(
  el: HTMLElement,
  data: HeatmapData,
  state: FactorState,
  callbacks: FactorCallbacks = {},
): ViewHandle<FactorState> {
  const doc = el.ownerDocument;
  ensureStyles(doc);
  clear(el);
  const rank = data.rank;
  const threshold = data.threshold ?? 0.01;
  const root = h("div", "pl-view pl-neuron-heatmaps");
  const head = h("div", "pl-head");
  head.appendChild(h("h4", "", `Neuron heatmaps (rank ${rank})`));
  head.appendChild(viewExport(() => root, `neuron heatmaps rank ${rank}`));
  root.appendChild(head);
  root.appendChild(
    caption(
      "Each layer: how strongly every neuron (or channel) loads on every factor (colour: viridis, dark = 0; " +
        "√ colours spread the small loadings so they stay visible beside a few large ones), " +
        "and the selected factor's loadings folded back to the layer's channels. Click a row or use ↑/↓ on the matrix to select a factor; hover for values.",
    ),
  );
  // tensor-model and signed layers say how they differ (matrix fits of non-negative blocks show no more)
  if (data.layers.some(isTensor))
    root.appendChild(
      caption(
        "Tensor model layers (CP): the matrix shows channels × factors (the channel factor), and every factor has one " +
          "spatial map of where in the layer (y × x) it acts, each scaled to its own peak; a neuron's loading is its " +
          "channel's loading times its position's. Click a map to select its factor.",
        "pl-caption-tensor",
      ),
    );
  if (data.layers.some((l) => l.signed))
    root.appendChild(
      caption(
        "Signed layers (semi-NMF): loadings take both signs, coloured blue (negative) – white (0) – red (positive) " +
          "on a range symmetric around 0.",
        "pl-caption-signed",
      ),
    );
  const show = (ev: MouseEvent, lines: string[]) => tip().show(ev, lines);
  const body = h("div", "pl-heat");
  root.appendChild(body);
  const parts: LayerParts[] = [];
  const cleanups: (() => void)[] = [];
  const tip = () => Tooltip.for(doc);
  let current = state.factor;

  const select = (r: number) => {
    if (r < 0 || r >= rank) return;
    apply(r);
    callbacks.onFactor?.(r);
  };

  data.layers.forEach((layer, index) => {
    const n = Math.floor(layer.loadings.length / Math.max(1, rank));
    // a tensor block's matrix has one column per channel (its channel factor): no neuron / channel toggle
    const tensor = isTensor(layer);
    const conv = layer.shape.length === 3 && !tensor;
    const signed = !!layer.signed;
    const sec = h("div", "pl-layer");
    sec.dataset.layer = layer.name;
    if (tensor) sec.dataset.model = "tensor";
    if (signed) sec.dataset.signed = "true";
    const title = h(
      "div",
      "pl-layer-title",
      tensor
        ? `${displayName(layer.name)}  (${layer.shape.join("×")}, tensor model: ${layer.shape[0]} channels × ${layer.shape[1]}×${layer.shape[2]} positions)`
        : `${displayName(layer.name)}  (${layer.shape.join("×")}, ${n} neurons${signed ? ", signed" : ""})`,
    );
    title.title = layer.name;
    sec.appendChild(title);

    // utilisation
    const share = layerUnusedShare(layer, rank, threshold);
    const util = h("div", "pl-util");
    const barOuter = h("div", "pl-util-bar");
    const barInner = h("div");
    barInner.style.width = `${(100 * share).toFixed(1)}%`;
    barOuter.appendChild(barInner);
    util.append(
      barOuter,
      h(
        "span",
        "pl-util-text",
        signed
          ? `${fmt(100 * share, 3)}% of neurons unused (|loading| below ${fmt(100 * threshold, 2)}% of the layer's largest on every factor)`
          : `${fmt(100 * share, 3)}% of neurons unused (below ${fmt(100 * threshold, 2)}% of the layer maximum on every factor)`,
      ),
    );
    util.title = GLOSSARY.unused;
    util.dataset.unused = String(share);
    sec.appendChild(util);

    // controls: columns (neurons / channel mean / channel max) and zoom
    const controls = h("div", "pl-layer-controls");
    sec.appendChild(controls);
    // a choice made for this layer in another view of the document (another rank) carries over
    const saved = layerViews(doc).get(layer.name);
    let mode: ColumnMode =
      saved && (conv || saved.mode === "neurons") ? saved.mode : conv && n > FIT_WIDTH ? "mean" : "neurons";
    let zoom = saved?.zoom ?? 1;
    let scale: ColorScale = saved?.scale ?? "sqrt";
    const publish = () => {
      const v: LayerView = { mode, scale, zoom };
      layerViews(doc).set(layer.name, v);
      doc.dispatchEvent(new CustomEvent(PREFS_EVENT, { detail: { layer: layer.name, view: v, from: root } }));
    };
    const onShared = (ev: Event) => {
      const d = (ev as CustomEvent).detail as { layer: string; view: LayerView; from: HTMLElement };
      if (d.from === root || d.layer !== layer.name) return;
      const nextMode = conv || d.view.mode === "neurons" ? d.view.mode : mode;
      if (nextMode === mode && d.view.scale === scale && d.view.zoom === zoom) return;
      const redraw = nextMode !== mode || d.view.scale !== scale;
      mode = nextMode;
      scale = d.view.scale;
      zoom = d.view.zoom;
      if (redraw) {
        drawMatrix();
        drawMaps(layer, parts[index], current);
      } else layout();
    };
    doc.addEventListener(PREFS_EVENT, onShared);
    cleanups.push(() => doc.removeEventListener(PREFS_EVENT, onShared));
    const modeBtns: HTMLButtonElement[] = [];
    if (conv) {
      const tg = h("span", "pl-toggle pl-mode");
      tg.setAttribute("role", "group");
      tg.setAttribute("aria-label", `columns of the ${displayName(layer.name)} matrix`);
      tg.appendChild(h("span", "", "columns:"));
      for (const [m, label] of [
        ["neurons", "neurons"],
        ["mean", "channels (mean)"],
        ["max", "channels (max)"],
      ] as [ColumnMode, string][]) {
        const b = h("button", "", label);
        b.type = "button";
        b.dataset.mode = m;
        b.setAttribute(
          "aria-label",
          m === "neurons" ? "one column per neuron" : `one column per channel, ${m} over its neurons`,
        );
        b.addEventListener("click", () => {
          mode = m;
          drawMatrix();
          publish();
        });
        modeBtns.push(b);
        tg.appendChild(b);
      }
      controls.appendChild(tg);
    }
    const sg = h("span", "pl-toggle pl-scale");
    sg.setAttribute("role", "group");
    sg.setAttribute("aria-label", "colour scale");
    sg.appendChild(h("span", "", "colours:"));
    const scaleBtns: HTMLButtonElement[] = [];
    for (const [sc, label, aria] of [
      ["linear", "linear", "colours linear in the loading"],
      ["sqrt", "√", "colours by the square root of the loading"],
    ] as [ColorScale, string, string][]) {
      const b = h("button", "", label);
      b.type = "button";
      b.dataset.scale = sc;
      b.setAttribute("aria-label", aria);
      b.title = aria;
      b.addEventListener("click", () => {
        scale = sc;
        drawMatrix();
        drawMaps(layer, parts[index], current);
        publish();
      });
      scaleBtns.push(b);
      sg.appendChild(b);
    }
    controls.appendChild(sg);
    const zg = h("span", "pl-toggle pl-zoom");
    zg.setAttribute("role", "group");
    zg.setAttribute("aria-label", "zoom the matrix horizontally");
    zg.appendChild(h("span", "", "zoom:"));
    const zout = h("button", "", "−");
    zout.type = "button";
    zout.setAttribute("aria-label", "zoom out");
    const zval = h("button", "pl-zoom-value", "1×");
    zval.type = "button";
    zval.setAttribute("aria-label", "fit the width");
    const zin = h("button", "", "+");
    zin.type = "button";
    zin.setAttribute("aria-label", "zoom in");
    zg.append(zout, zval, zin);
    controls.appendChild(zg);

    // the matrix: factors as rows, columns as chosen; row labels, axis titles and a colour bar
    const fig = h("div", "pl-matrix-fig");
    const yTitle = h("div", "pl-axis-y", "factor");
    const rowLabels = h("div", "pl-rowlabels");
    const scroll = h("div", "pl-scroll");
    const inner = h("div", "pl-scroll-inner");
    scroll.appendChild(inner);
    const cbBox = h("div", "pl-cb-box");
    fig.append(yTitle, rowLabels, scroll, cbBox);
    const xTitle = h("div", "pl-axis-x");
    sec.appendChild(fig);
    const cbBelow = h("div", "pl-cb-below");
    sec.appendChild(cbBelow);
    controls.appendChild(exportButtons({ name: `${layer.name} factor matrix`, png: () => elementPngBlob(fig) }));

    const rowH = rowHeight(rank);
    const matH = rowH * rank;
    rowLabels.style.height = `${matH}px`;
    const every = rowH >= 12 ? 1 : 5;
    const labels: HTMLElement[] = [];
    for (let r = 0; r < rank; r++) {
      const s = h("span", "", r % every === 0 ? String(r) : "");
      s.style.top = `${(r + 0.5) * rowH}px`;
      labels.push(s);
      rowLabels.appendChild(s);
    }

    const mat = makeCanvas(1, rank, FIT_WIDTH, matH);
    mat.className = "pl-matrix";
    mat.style.display = "block";
    mat.style.cursor = "pointer";
    mat.tabIndex = 0;
    mat.setAttribute("role", "img");
    mat.setAttribute(
      "aria-label",
      `${displayName(layer.name)}: loadings of ${n} ${tensor ? "channels" : "neurons"} on ${rank} factors; arrow up and down select a factor`,
    );
    const hl = h("div", "pl-row-highlight");
    Object.assign(hl.style, {
      position: "absolute",
      left: "0",
      width: "100%",
      boxSizing: "border-box",
      height: `${rowH}px`,
      border: "2px solid #d62728",
      pointerEvents: "none",
    });
    const xAxis = h("div", "pl-xticks");
    xAxis.style.position = "relative";
    xAxis.style.height = "18px";
    inner.append(mat, hl, xAxis);
    fig.appendChild(xTitle);

    let cols = n;
    let values: Float32Array = new Float32Array(0);
    const drawMatrix = () => {
      modeBtns.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.mode === mode)));
      scaleBtns.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.scale === scale)));
      sec.dataset.mode = mode;
      sec.dataset.scale = scale;
      let M: Float32Array;
      if (mode === "neurons") {
        M = layer.loadings;
        cols = n;
      } else {
        const a = aggregateChannels(layer, rank, mode);
        M = a.data;
        cols = a.channels;
      }
      values = M;
      let peak = 0;
      // signed layers: the diverging map over [-m, m] (m the largest magnitude), white = 0
      let low = 0;
      if (signed) [low, peak] = signedRange(M.subarray(0, cols * rank));
      else for (let i = 0; i < cols * rank; i++) if (M[i] > peak) peak = M[i];
      const t = new Float32Array(cols * rank);
      for (let i = 0; i < cols; i++) for (let r = 0; r < rank; r++) t[r * cols + i] = M[i * rank + r];
      mat.width = Math.max(1, cols);
      mat.height = Math.max(1, rank);
      const top = scale === "sqrt" ? Math.sqrt(peak) : peak;
      const lut = signed ? DIVERGING : CMAP;
      mat.dataset.cmap = signed ? "diverging" : "viridis";
      putPixels(
        mat,
        imageToRGBA(scaleValues(t, scale, signed), 0, rank, cols, 1, lut, signed ? -top : 0, top || 1),
        cols,
        rank,
      );
      clear(cbBox);
      clear(cbBelow);
      const cbLabel = tensor ? "channel loading" : mode === "neurons" ? "loading" : `channel ${mode} of the loadings`;
      const cbOpts = signed ? { scale, lut: DIVERGING } : { scale };
      if (matH >= 140)
        cbBox.appendChild(
          colorBar(low, peak || 1, { vertical: true, length: Math.min(matH, 260), label: cbLabel, ...cbOpts }),
        );
      else cbBelow.appendChild(colorBar(low, peak || 1, { length: 220, label: cbLabel, ...cbOpts }));
      xTitle.textContent = tensor
        ? "channel (the CP model's channel factor)"
        : mode === "neurons"
          ? conv
            ? `neuron (ordered channel × y × x; ticks mark where each channel starts)`
            : layer.shape.length === 2
              ? "neuron (y × x)"
              : "neuron"
          : "channel";
      layout();
    };
    const layout = () => {
      const fitW = mode === "neurons" && !tensor ? FIT_WIDTH : Math.max(160, Math.min(FIT_WIDTH, cols * 48));
      const cssW = Math.round(fitW * zoom);
      mat.style.width = `${cssW}px`;
      mat.style.height = `${matH}px`;
      inner.style.width = `${cssW}px`;
      zval.textContent = `${zoom}×`;
      zout.disabled = zoom <= 1;
      zin.disabled = zoom >= 16;
      // x ticks: channel starts (neurons of a conv layer), channel centres, or round neuron indices
      clear(xAxis);
      const colW = cssW / Math.max(1, cols);
      const ticks: { at: number; label: string }[] = [];
      const room = (label: string) => textWidth(label, FONT.tick) + 10;
      if (mode !== "neurons" || tensor) {
        const step = Math.max(1, Math.ceil(room(String(cols - 1)) / colW));
        for (let c = 0; c < cols; c += step) ticks.push({ at: (c + 0.5) * colW, label: String(c) });
      } else if (conv) {
        const C = layer.shape[0],
          hw = layer.shape[1] * layer.shape[2];
        const step = Math.max(1, Math.ceil(room(`ch ${C - 1}`) / (hw * colW)));
        for (let c = 0; c < C; c += step) ticks.push({ at: c * hw * colW, label: `ch ${c}` });
      } else {
        const target = Math.max(2, Math.floor(cssW / 60));
        const raw = cols / target;
        const mag = Math.pow(10, Math.floor(Math.log10(Math.max(1, raw))));
        const st = [1, 2, 5, 10].map((k) => k * mag).find((k) => k >= raw) ?? 10 * mag;
        for (let i = 0; i < cols; i += st) ticks.push({ at: (i + 0.5) * colW, label: String(i) });
      }
      for (const t of ticks) {
        const tk = h("span", "pl-xtick", t.label);
        Object.assign(tk.style, {
          position: "absolute",
          left: `${t.at}px`,
          top: "3px",
          fontSize: "11px",
          whiteSpace: "nowrap",
          borderLeft: "1px solid currentColor",
          paddingLeft: "2px",
          lineHeight: "13px",
        });
        xAxis.appendChild(tk);
      }
    };
    zout.addEventListener("click", () => {
      zoom = Math.max(1, zoom / 2);
      layout();
      publish();
    });
    zin.addEventListener("click", () => {
      zoom = Math.min(16, zoom * 2);
      layout();
      publish();
    });
    zval.addEventListener("click", () => {
      zoom = 1;
      layout();
      publish();
    });
    drawMatrix();

    const where = (ev: MouseEvent) => {
      const rect = mat.getBoundingClientRect();
      const i = Math.min(
        cols - 1,
        Math.max(0, Math.floor(((ev.clientX - rect.left) / Math.max(1, rect.width)) * cols)),
      );
      const r = Math.min(
        rank - 1,
        Math.max(0, Math.floor(((ev.clientY - rect.top) / Math.max(1, rect.height)) * rank)),
      );
      return { i, r };
    };
    const onMatMove = (ev: MouseEvent) => {
      const { i, r } = where(ev);
      show(ev, cellText(layer, mode, r, i, values[i * rank + r]));
    };
    const onLeave = () => tip().hide();
    const onMatClick = (ev: MouseEvent) => select(where(ev).r);
    const offKeys = keepKeys(mat);
    const onMatKey = (ev: KeyboardEvent) => {
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        const base = current >= 0 && current < rank ? current : ev.key === "ArrowDown" ? -1 : rank;
        select(Math.max(0, Math.min(rank - 1, base + (ev.key === "ArrowDown" ? 1 : -1))));
      } else if (ev.key === "Home" || ev.key === "End") {
        ev.preventDefault();
        select(ev.key === "Home" ? 0 : rank - 1);
      }
    };
    mat.addEventListener("mousemove", onMatMove);
    mat.addEventListener("mouseleave", onLeave);
    mat.addEventListener("click", onMatClick);
    mat.addEventListener("keydown", onMatKey);
    cleanups.push(() => {
      offKeys();
      mat.removeEventListener("mousemove", onMatMove);
      mat.removeEventListener("mouseleave", onLeave);
      mat.removeEventListener("click", onMatClick);
      mat.removeEventListener("keydown", onMatKey);
    });

    const mapsBar = h("div", "pl-maps-title");
    const maps = h("div", "pl-maps");
    sec.append(mapsBar, maps);
    body.appendChild(sec);
    parts.push({ scale: () => scale, maps, mapsBar, highlight: hl, labels, rowH });
  });
  el.appendChild(root);

  const drawMaps = (layer: LayerData, part: LayerParts, factor: number) => {
    if (isTensor(layer)) {
      drawSpatialFactor(layer, part, factor);
      return;
    }
    clear(part.maps);
    part.maps.dataset.factor = String(factor);
    if (factor < 0 || factor >= rank) {
      part.mapsBar.textContent = "";
      part.maps.appendChild(h("span", "pl-muted", "select a factor to see its spatial maps"));
      return;
    }
    const f = foldFactor(layer, rank, factor);
    let mx = 0;
    let low = 0;
    if (layer.signed) [low, mx] = signedRange(f.data);
    else for (let i = 0; i < f.data.length; i++) mx = Math.max(mx, f.data[i]);
    const lut = layer.signed ? DIVERGING : CMAP;
    part.mapsBar.textContent =
      f.h === 1 ? `factor ${factor}: loading of every neuron` : `factor ${factor}: loadings per channel (y × x)`;
    const hw = f.h * f.w;
    const scale = part.scale();
    const shown = scaleValues(f.data, scale, layer.signed);
    const top = scale === "sqrt" ? Math.sqrt(mx) : mx;
    const css = f.h === 1 ? Math.min(640, Math.max(160, f.w * 4)) : Math.max(48, Math.min(96, f.w * 5));
    for (let c = 0; c < f.c; c++) {
      const box = h("div", "pl-map");
      const cv = makeCanvas(f.w, f.h, css, f.h === 1 ? 18 : Math.round(css * (f.h / f.w)));
      cv.dataset.channel = String(c);
      putPixels(cv, imageToRGBA(shown, c * hw, f.h, f.w, 1, lut, layer.signed ? -top : 0, top || 1), f.w, f.h);
      cv.addEventListener("mousemove", (ev: MouseEvent) => {
        const rect = cv.getBoundingClientRect();
        const x = Math.min(
          f.w - 1,
          Math.max(0, Math.floor(((ev.clientX - rect.left) / Math.max(1, rect.width)) * f.w)),
        );
        const y = Math.min(
          f.h - 1,
          Math.max(0, Math.floor(((ev.clientY - rect.top) / Math.max(1, rect.height)) * f.h)),
        );
        const v = f.data[c * hw + y * f.w + x];
        const where =
          layer.shape.length === 3 ? `channel ${c} · y ${y}, x ${x}` : describeNeuron(layer.shape, y * f.w + x);
        show(ev, [`${displayName(layer.name)} · factor ${factor}`, where, `loading ${fmt(v, 4)}`]);
      });
      cv.addEventListener("mouseleave", () => tip().hide());
      box.appendChild(cv);
      if (f.c > 1) box.appendChild(h("span", "", `ch ${c}`));
      part.maps.appendChild(box);
    }
    part.maps.appendChild(
      colorBar(low, mx || 1, {
        vertical: f.h > 1,
        length: f.h > 1 ? Math.max(48, Math.round(css * (f.h / f.w))) : 160,
        label: f.h > 1 ? "" : "loading",
        scale,
        ...(layer.signed ? { lut: DIVERGING } : {}),
      }),
    );
  };

  /**
   * A tensor block's spatial factor: one H x W map per factor (each scaled to its own peak, so every
   * factor's "where" is visible), the selected factor outlined; clicking a map selects its factor.
   */
  const drawSpatialFactor = (layer: LayerData, part: LayerParts, factor: number) => {
    clear(part.maps);
    part.maps.dataset.factor = String(factor);
    const S = layer.spatial ?? new Float32Array(0);
    const H = layer.shape[1],
      Wd = layer.shape[2],
      P = H * Wd;
    const on = factor >= 0 && factor < rank;
    part.mapsBar.textContent = `spatial factor: where in the layer (y × x) each factor acts${on ? `; factor ${factor} outlined` : ""}`;
    const scale = part.scale();
    const css = Math.max(64, Math.min(96, Wd * 5));
    const cssH = Math.max(2, Math.round(css * (H / Math.max(1, Wd))));
    for (let r = 0; r < rank; r++) {
      const col = new Float32Array(P);
      let mx = 0;
      for (let p = 0; p < P; p++) {
        col[p] = S[p * rank + r];
        mx = Math.max(mx, col[p]);
      }
      const rel = new Float32Array(P);
      for (let p = 0; p < P; p++) rel[p] = mx > 0 ? col[p] / mx : 0;
      const box = h("div", "pl-map pl-factor-map");
      box.dataset.factor = String(r);
      // the selected map is framed in red (a border, so that the PNG export paints it too)
      box.style.padding = "1px";
      box.style.border = `2px solid ${r === factor ? "#d62728" : "transparent"}`;
      box.style.borderRadius = "3px";
      const cv = makeCanvas(Wd, H, css, cssH);
      cv.className = "pl-spatial";
      cv.dataset.factor = String(r);
      cv.style.cursor = "pointer";
      cv.setAttribute("aria-label", `${displayName(layer.name)}: spatial map of factor ${r}, ${H} × ${Wd}`);
      putPixels(cv, imageToRGBA(scaleValues(rel, scale), 0, H, Wd, 1, CMAP, 0, 1), Wd, H);
      cv.addEventListener("mousemove", (ev: MouseEvent) => {
        const rect = cv.getBoundingClientRect();
        const x = Math.min(Wd - 1, Math.max(0, Math.floor(((ev.clientX - rect.left) / Math.max(1, rect.width)) * Wd)));
        const y = Math.min(H - 1, Math.max(0, Math.floor(((ev.clientY - rect.top) / Math.max(1, rect.height)) * H)));
        const v = col[y * Wd + x];
        show(ev, [
          `${displayName(layer.name)} · factor ${r}`,
          `y ${y}, x ${x}`,
          `spatial loading ${fmt(v, 4)} (${fmt(mx > 0 ? (100 * v) / mx : 0, 3)}% of the map's peak)`,
        ]);
      });
      cv.addEventListener("mouseleave", () => tip().hide());
      cv.addEventListener("click", () => select(r));
      const lab = h("span", r === factor ? "pl-on" : "", `factor ${r}`);
      if (r === factor) Object.assign(lab.style, { fontWeight: "bold", color: "#d62728" });
      box.append(cv, lab);
      part.maps.appendChild(box);
    }
    part.maps.appendChild(colorBar(0, 1, { vertical: true, length: Math.max(48, cssH), label: "÷ peak", scale }));
  };

  const apply = (factor: number) => {
    current = factor;
    root.dataset.factor = String(factor);
    data.layers.forEach((layer, j) => {
      const p = parts[j];
      const on = factor >= 0 && factor < rank;
      p.highlight.style.display = on ? "block" : "none";
      p.highlight.style.top = `${Math.max(0, factor) * p.rowH}px`;
      p.labels.forEach((l, r) => {
        l.classList.toggle("pl-on", r === factor);
        if (r === factor) l.textContent = String(r);
        else if (p.rowH < 12 && r % 5 !== 0) l.textContent = "";
      });
      drawMaps(layer, p, factor);
    });
  };
  apply(state.factor);

  return {
    update(s: FactorState) {
      if (s.factor !== current) apply(s.factor);
    },
    destroy() {
      cleanups.forEach((f) => f());
      Tooltip.for(doc).hide();
      clear(el);
    },
  };
}
