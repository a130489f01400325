/** Shared drawing helpers: colour maps, canvas images, SVG charts and text-safe labels. */

const SVG_NS = "http://www.w3.org/2000/svg";

/** Viridis control points (matplotlib), interpolated to a 256-entry table. */
const VIRIDIS_STOPS: [number, number, number][] = [
  [68, 1, 84], [72, 35, 116], [64, 67, 135], [52, 94, 141], [41, 120, 142],
  [32, 144, 140], [34, 167, 132], [68, 190, 112], [121, 209, 81], [189, 222, 38], [253, 231, 37],
];

function buildLut(stops: [number, number, number][]): Uint8ClampedArray {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1);
    const j = Math.min(Math.floor(t), stops.length - 2);
    const f = t - j;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(stops[j][c] * (1 - f) + stops[j + 1][c] * f);
  }
  return lut;
}

export const VIRIDIS = buildLut(VIRIDIS_STOPS);
export const GREYS = buildLut([[0, 0, 0], [255, 255, 255]]);
/** White to dark blue, for loadings (zero is white). */
export const BLUES = buildLut([[255, 255, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]]);

/** Categorical colours (Tableau 10) for lines. */
export const PALETTE = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
];

export function colour(i: number): string {
  return PALETTE[((i % PALETTE.length) + PALETTE.length) % PALETTE.length];
}

/** Map one value to a colour-table index. */
export function lutIndex(v: number, vmin: number, vmax: number): number {
  if (!(vmax > vmin) || !Number.isFinite(v)) return 0;
  const t = (v - vmin) / (vmax - vmin);
  return Math.max(0, Math.min(255, Math.round(t * 255)));
}

/**
 * RGBA pixels of one image of a stack. Grey images go through `lut` (scaled by vmin..vmax),
 * RGB images are taken as is (values in [0, 1]).
 */
export function imageToRGBA(
  data: Float32Array,
  offset: number,
  height: number,
  width: number,
  channels: number,
  lut: Uint8ClampedArray = GREYS,
  vmin = 0,
  vmax = 1,
): Uint8ClampedArray {
  const n = height * width;
  const out = new Uint8ClampedArray(n * 4);
  if (channels >= 3) {
    for (let p = 0; p < n; p++) {
      const s = offset + p * channels;
      out[p * 4] = data[s] * 255;
      out[p * 4 + 1] = data[s + 1] * 255;
      out[p * 4 + 2] = data[s + 2] * 255;
      out[p * 4 + 3] = 255;
    }
  } else {
    for (let p = 0; p < n; p++) {
      const k = lutIndex(data[offset + p * channels], vmin, vmax) * 3;
      out[p * 4] = lut[k];
      out[p * 4 + 1] = lut[k + 1];
      out[p * 4 + 2] = lut[k + 2];
      out[p * 4 + 3] = 255;
    }
  }
  return out;
}

/** Put RGBA pixels on a canvas (no-op where the DOM has no 2D canvas, e.g. in unit tests). */
export function putPixels(canvas: HTMLCanvasElement, rgba: Uint8ClampedArray, width: number, height: number, dx = 0, dy = 0): void {
  let ctx: CanvasRenderingContext2D | null = null;
  try {
    ctx = canvas.getContext("2d");
  } catch {
    ctx = null;
  }
  if (!ctx || typeof ImageData === "undefined") return;
  const img = new ImageData(width, height);
  img.data.set(rgba);
  ctx.putImageData(img, dx, dy);
}

/** A pixelated canvas of `width` x `height` pixels shown at `scale` CSS pixels per pixel. */
export function makeCanvas(width: number, height: number, cssWidth?: number, cssHeight?: number): HTMLCanvasElement {
  const c = document.createElement("canvas");
  c.width = Math.max(1, width);
  c.height = Math.max(1, height);
  c.style.width = `${cssWidth ?? width}px`;
  c.style.height = `${cssHeight ?? height}px`;
  c.style.imageRendering = "pixelated";
  return c;
}

/** Draw image `index` of a stack on a new canvas. */
export function stackCanvas(stack: { data: Float32Array; height: number; width: number; channels: number }, index: number, css: number, lut: Uint8ClampedArray = GREYS, vmin = 0, vmax = 1): HTMLCanvasElement {
  const { height, width, channels } = stack;
  const aspect = height / Math.max(1, width);
  const cssW = aspect > 1 ? css / aspect : css;
  const cssH = aspect > 1 ? css : css * aspect;
  const c = makeCanvas(width, height, Math.max(2, Math.round(cssW)), Math.max(2, Math.round(cssH)));
  const off = index * height * width * channels;
  putPixels(c, imageToRGBA(stack.data, off, height, width, channels, lut, vmin, vmax), width, height);
  return c;
}

/** An element with class and text content (never innerHTML: names and labels stay text). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

export function svgText(x: number, y: number, text: string, attrs: Record<string, string | number> = {}): SVGTextElement {
  const t = svg("text", { x, y, ...attrs });
  t.textContent = text;
  return t;
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** Compact number formatting for tick labels and read-outs. */
export function fmt(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(Math.max(0, digits - 2));
  return Number(v.toPrecision(digits)).toString();
}

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/**
 * Ticks for a log axis over [lo, hi] (lo > 0): the powers of ten, and also 2x and 5x of them
 * when fewer than three powers of ten fall inside the range.
 */
export function logTicks(lo: number, hi: number): number[] {
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  const out: number[] = [];
  for (let e = a; e <= b; e++) out.push(Math.pow(10, e));
  const inside = out.filter((t) => t >= lo * 0.999 && t <= hi * 1.001).length;
  if (inside >= 3) return out;
  const dense: number[] = [];
  for (let e = a; e <= b; e++) for (const m of [1, 2, 5]) dense.push(Number((m * Math.pow(10, e)).toPrecision(6)));
  return dense;
}

/** A tick label with just enough decimals to tell ticks `step` apart. */
export function tickLabel(v: number, step: number): string {
  if (!Number.isFinite(step) || step <= 0) return fmt(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-4)) return v.toExponential(1);
  const decimals = Math.max(0, Math.min(8, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(decimals);
}

export interface Series {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color?: string;
  dash?: string;
  points?: boolean;
}

export interface LineChartOptions {
  width?: number;
  height?: number;
  title?: string;
  xLabel?: string;
  yLabel?: string;
  logY?: boolean;
  /** Draw a vertical marker at this x. */
  marker?: number | null;
  legend?: boolean;
  /** Integer x ticks at these values (e.g. the swept ranks). */
  xTicks?: number[];
}

/** Scales of a chart, kept so that a marker can move without redrawing. */
export interface ChartGeometry {
  x: (v: number) => number;
  y: (v: number) => number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** An SVG line chart with axes, ticks, legend (text only) and an optional vertical marker. */
export function lineChart(series: Series[], opts: LineChartOptions = {}): { svg: SVGSVGElement; geometry: ChartGeometry; marker: SVGLineElement } {
  const W = opts.width ?? 360;
  const H = opts.height ?? 220;
  const m = { l: 52, r: 12, t: opts.title ? 22 : 10, b: 36 };
  const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "pl-chart" });
  let xmin = Infinity, xmax = -Infinity, ymin = Infinity, ymax = -Infinity;
  for (const s of series) {
    for (let i = 0; i < s.x.length; i++) {
      const xv = s.x[i], yv = s.y[i];
      if (!Number.isFinite(xv) || !Number.isFinite(yv) || (opts.logY && yv <= 0)) continue;
      xmin = Math.min(xmin, xv); xmax = Math.max(xmax, xv);
      ymin = Math.min(ymin, yv); ymax = Math.max(ymax, yv);
    }
  }
  if (!Number.isFinite(xmin)) { xmin = 0; xmax = 1; ymin = opts.logY ? 1 : 0; ymax = opts.logY ? 10 : 1; }
  if (xmax === xmin) { xmin -= 1; xmax += 1; }
  if (opts.logY) {
    if (ymax === ymin) { ymin /= 10; ymax *= 10; }
  } else {
    const pad = (ymax - ymin) * 0.08 || Math.abs(ymax) * 0.1 || 1;
    ymin = Math.max(ymin >= 0 ? 0 : -Infinity, ymin - pad); ymax += pad;
    if (ymin > 0 && ymin < (ymax - ymin)) ymin = 0;
  }
  const left = m.l, right = W - m.r, top = m.t, bottom = H - m.b;
  const x = (v: number) => left + ((v - xmin) / (xmax - xmin)) * (right - left);
  const ly0 = Math.log10(ymin), ly1 = Math.log10(ymax);
  const y = opts.logY
    ? (v: number) => bottom - ((Math.log10(Math.max(v, 1e-300)) - ly0) / (ly1 - ly0 || 1)) * (bottom - top)
    : (v: number) => bottom - ((v - ymin) / (ymax - ymin || 1)) * (bottom - top);

  const axes = svg("g", { class: "pl-axes", "font-size": 10, fill: "currentColor" });
  axes.appendChild(svg("line", { x1: left, y1: bottom, x2: right, y2: bottom, stroke: "currentColor", "stroke-opacity": 0.6 }));
  axes.appendChild(svg("line", { x1: left, y1: top, x2: left, y2: bottom, stroke: "currentColor", "stroke-opacity": 0.6 }));
  const xt = opts.xTicks && opts.xTicks.length <= 12 ? opts.xTicks : niceTicks(xmin, xmax, 6);
  for (const t of xt) {
    if (t < xmin - 1e-9 || t > xmax + 1e-9) continue;
    axes.appendChild(svg("line", { x1: x(t), y1: bottom, x2: x(t), y2: bottom + 4, stroke: "currentColor" }));
    axes.appendChild(svgText(x(t), bottom + 14, opts.xTicks ? fmt(t) : tickLabel(t, xt.length > 1 ? xt[1] - xt[0] : 1), { "text-anchor": "middle" }));
  }
  const yt = opts.logY ? logTicks(ymin, ymax).filter((t) => t >= ymin * 0.999 && t <= ymax * 1.001) : niceTicks(ymin, ymax, 5);
  const ystep = yt.length > 1 ? yt[1] - yt[0] : Math.abs(yt[0] || 1);
  for (const t of yt) {
    axes.appendChild(svg("line", { x1: left - 4, y1: y(t), x2: right, y2: y(t), stroke: "currentColor", "stroke-opacity": 0.12 }));
    const label = opts.logY ? fmt(t, 3) : tickLabel(t, ystep);
    axes.appendChild(svgText(left - 6, y(t) + 3, label, { "text-anchor": "end" }));
  }
  if (opts.xLabel) axes.appendChild(svgText((left + right) / 2, H - 6, opts.xLabel, { "text-anchor": "middle" }));
  if (opts.yLabel) axes.appendChild(svgText(12, (top + bottom) / 2, opts.yLabel, { "text-anchor": "middle", transform: `rotate(-90 12 ${(top + bottom) / 2})` }));
  if (opts.title) axes.appendChild(svgText(left, 14, opts.title, { "font-weight": "bold", "font-size": 11 }));
  root.appendChild(axes);

  const marker = svg("line", { class: "pl-marker", y1: top, y2: bottom, stroke: "#d62728", "stroke-width": 1.5, "stroke-dasharray": "4 3" });
  root.appendChild(marker);

  series.forEach((s, i) => {
    const col = s.color ?? colour(i);
    const pts: string[] = [];
    for (let j = 0; j < s.x.length; j++) {
      const yv = s.y[j];
      if (!Number.isFinite(yv) || (opts.logY && yv <= 0)) continue;
      pts.push(`${x(s.x[j]).toFixed(1)},${y(yv).toFixed(1)}`);
    }
    const g = svg("g", { class: "pl-series" });
    g.setAttribute("data-name", s.name);
    const line = svg("polyline", { points: pts.join(" "), fill: "none", stroke: col, "stroke-width": 1.8 });
    if (s.dash) line.setAttribute("stroke-dasharray", s.dash);
    g.appendChild(line);
    if (s.points) {
      for (const p of pts) {
        const [px, py] = p.split(",");
        g.appendChild(svg("circle", { cx: px, cy: py, r: 2.6, fill: col }));
      }
    }
    root.appendChild(g);
  });

  if (opts.legend !== false && series.length > 1) {
    const lg = svg("g", { class: "pl-legend", "font-size": 10, fill: "currentColor" });
    series.forEach((s, i) => {
      const ly = top + 4 + i * 13;
      lg.appendChild(svg("line", { x1: right - 140, y1: ly, x2: right - 126, y2: ly, stroke: s.color ?? colour(i), "stroke-width": 2, ...(s.dash ? { "stroke-dasharray": s.dash } : {}) }));
      const label = svgText(right - 122, ly + 3, s.name.length > 24 ? s.name.slice(0, 23) + "…" : s.name);
      const tip = svg("title");
      tip.textContent = s.name;
      label.appendChild(tip);
      lg.appendChild(label);
    });
    root.appendChild(lg);
  }
  const geometry = { x, y, left, right, top, bottom };
  moveMarker(marker, geometry, opts.marker ?? null);
  return { svg: root, geometry, marker };
}

export function moveMarker(marker: SVGLineElement, g: ChartGeometry, at: number | null): void {
  if (at === null || !Number.isFinite(at)) {
    marker.setAttribute("visibility", "hidden");
    return;
  }
  const xv = g.x(at);
  marker.setAttribute("x1", xv.toFixed(1));
  marker.setAttribute("x2", xv.toFixed(1));
  marker.setAttribute("visibility", "visible");
}

/** Index of the value in `arr` nearest to `v`. */
export function nearestIndex(arr: ArrayLike<number>, v: number): number {
  let best = 0;
  for (let i = 1; i < arr.length; i++) if (Math.abs(arr[i] - v) < Math.abs(arr[best] - v)) best = i;
  return best;
}

/** Inject the views' stylesheet once per document. */
export function ensureStyles(doc: Document = document): void {
  if (doc.getElementById("peeklens-styles")) return;
  const st = doc.createElement("style");
  st.id = "peeklens-styles";
  st.textContent = CSS;
  doc.head.appendChild(st);
}

export const CSS = `
.pl-view { font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 12px; color: var(--jp-ui-font-color1, #222); }
.pl-view h4 { margin: 4px 0 6px; font-size: 13px; }
.pl-row { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
.pl-slider { display: flex; gap: 8px; align-items: center; margin: 4px 0 8px; }
.pl-slider input[type=range] { width: 260px; }
.pl-gallery { display: flex; flex-wrap: wrap; gap: 6px; }
.pl-tile { border: 2px solid transparent; border-radius: 4px; padding: 3px; cursor: pointer; background: var(--jp-layout-color1, #fff); display: flex; flex-direction: column; gap: 2px; align-items: flex-start; }
.pl-tile:hover { border-color: #9ecae1; }
.pl-tile.pl-selected { border-color: #d62728; }
.pl-tile-title { font-size: 10px; opacity: 0.85; white-space: nowrap; }
.pl-heat { display: flex; flex-direction: column; gap: 8px; }
.pl-layer { border-top: 1px solid var(--jp-border-color2, #ddd); padding-top: 4px; }
.pl-maps { display: flex; flex-wrap: wrap; gap: 3px; }
.pl-map { display: flex; flex-direction: column; align-items: center; font-size: 9px; }
.pl-readout { min-height: 16px; font-family: var(--jp-code-font-family, monospace); font-size: 11px; }
.pl-util { display: flex; align-items: center; gap: 6px; font-size: 11px; }
.pl-util-bar { width: 120px; height: 8px; background: #c6dbef; border-radius: 2px; overflow: hidden; }
.pl-util-bar > div { height: 100%; background: #e15759; }
.pl-muted { opacity: 0.7; }
.pl-compare-galleries { flex-wrap: nowrap; overflow-x: auto; }
.pl-compare-network { flex: 1 1 0; min-width: 260px; }
.pl-chart text { user-select: none; }
`;
