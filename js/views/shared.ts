/** Shared drawing helpers: colour maps, canvas images, SVG charts and text-safe labels. */

const SVG_NS = "http://www.w3.org/2000/svg";

/** Viridis control points (matplotlib), interpolated to a 256-entry table. */
const VIRIDIS_STOPS: [number, number, number][] = [
  [68, 1, 84],
  [72, 35, 116],
  [64, 67, 135],
  [52, 94, 141],
  [41, 120, 142],
  [32, 144, 140],
  [34, 167, 132],
  [68, 190, 112],
  [121, 209, 81],
  [189, 222, 38],
  [253, 231, 37],
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
export const GREYS = buildLut([
  [0, 0, 0],
  [255, 255, 255],
]);
/** White to dark blue. Kept for callers' own plots; the views draw every magnitude with {@link CMAP}. */
export const BLUES = buildLut([
  [255, 255, 255],
  [198, 219, 239],
  [107, 174, 214],
  [33, 113, 181],
  [8, 48, 107],
]);
/**
 * The one colour table of the views for non-negative magnitudes (latent images, neuron heatmaps,
 * spatial maps, colour bars): viridis, perceptually uniform, dark = 0, yellow = maximum.
 * Input images (top inputs) keep their own grey or RGB values.
 */
export const CMAP = VIRIDIS;
/**
 * The one colour table of the views for signed values (semi-NMF loadings): blue (negative) - white
 * (0) - red (positive), ColorBrewer's RdBu reversed, a perceptually ordered diverging map. Drawn
 * over a range symmetric around 0 (see {@link signedRange}), so white is always 0.
 */
export const DIVERGING = buildLut([
  [5, 48, 97],
  [33, 102, 172],
  [67, 147, 195],
  [146, 197, 222],
  [209, 229, 240],
  [247, 247, 247],
  [253, 219, 199],
  [244, 165, 130],
  [214, 96, 77],
  [178, 24, 43],
  [103, 0, 31],
]);

/** The colour range of signed values: [-m, m] with m the largest magnitude (1 when all are 0). */
export function signedRange(values: ArrayLike<number>): [number, number] {
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]);
    if (a > m) m = a;
  }
  return m > 0 ? [-m, m] : [-1, 1];
}

/** Categorical colours (Tableau 10) for lines. */
export const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
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

/** The canvas's 2D context, or null where the DOM has none (e.g. in unit tests). */
export function context2d(canvas: HTMLCanvasElement): CanvasRenderingContext2D | null {
  try {
    return canvas.getContext("2d");
  } catch {
    return null;
  }
}

/** Put RGBA pixels on a canvas (no-op where the DOM has no 2D canvas, e.g. in unit tests). */
export function putPixels(
  canvas: HTMLCanvasElement,
  rgba: Uint8ClampedArray,
  width: number,
  height: number,
  dx = 0,
  dy = 0,
): void {
  const ctx = context2d(canvas);
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
export function stackCanvas(
  stack: { data: Float32Array; height: number; width: number; channels: number },
  index: number,
  css: number,
  lut: Uint8ClampedArray = GREYS,
  vmin = 0,
  vmax = 1,
): HTMLCanvasElement {
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
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  cls?: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number> = {},
): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

export function svgText(
  x: number,
  y: number,
  text: string,
  attrs: Record<string, string | number> = {},
): SVGTextElement {
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

/** Rough width in pixels of `text` at `size` px in a sans-serif font (for layout before the DOM measures). */
export function textWidth(text: string, size = 12): number {
  return Math.ceil(text.length * size * 0.58);
}

/** Font sizes of the views (px): titles, body text and legends, tick labels. Nothing smaller is drawn. */
export const FONT = { title: 13, text: 12, tick: 11 } as const;

/**
 * Lay out legend entries left to right in rows no wider than `width`; names longer than 40
 * characters, or than a row, are shortened (the full name stays in a tooltip), keeping a trailing
 * parenthesis whole.
 */
export function legendLayout(
  names: string[],
  width: number,
  size: number = FONT.text,
): { x: number; row: number; label: string }[] {
  const out: { x: number; row: number; label: string }[] = [];
  let x = 0,
    row = 0;
  for (const name of names) {
    const maxChars = Math.max(4, Math.min(40, Math.floor((width - 40) / (size * 0.58))));
    // a trailing "(…)" (e.g. an entropy rank) is kept whole: the name before it is shortened
    const tail = /\s*\([^()]*\)$/.exec(name)?.[0] ?? "";
    const label =
      name.length <= maxChars
        ? name
        : tail && tail.length < maxChars - 4
          ? name.slice(0, maxChars - tail.length - 1) + "…" + tail
          : name.slice(0, maxChars - 1) + "…";
    const w = 22 + textWidth(label, size) + 14;
    if (x > 0 && x + w > width) {
      x = 0;
      row++;
    }
    out.push({ x, row, label });
    x += w;
  }
  return out;
}

/**
 * An SVG line chart with axes, ticks, a legend below the plot (wrapped to the chart width, never
 * cut off) and an optional vertical marker. Text is at least 11 px (ticks) / 12 px (labels, legend).
 */
export function lineChart(
  series: Series[],
  opts: LineChartOptions = {},
): { svg: SVGSVGElement; geometry: ChartGeometry; marker: SVGLineElement } {
  const W = opts.width ?? 360;
  const legendOn = opts.legend !== false && series.length > 1;
  const LEG_ROW = 17;
  const legend = legendOn
    ? legendLayout(
        series.map((s) => s.name),
        W - 20,
      )
    : [];
  const legendH = legend.length ? (legend[legend.length - 1].row + 1) * LEG_ROW + 4 : 0;
  const H = (opts.height ?? 220) + legendH;
  const m = { l: 58, r: 14, t: opts.title ? 26 : 10, b: 40 + legendH };
  const root = svg("svg", {
    width: W,
    height: H,
    viewBox: `0 0 ${W} ${H}`,
    class: "pl-chart",
    "font-family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
  });
  let xmin = Infinity,
    xmax = -Infinity,
    ymin = Infinity,
    ymax = -Infinity;
  for (const s of series) {
    for (let i = 0; i < s.x.length; i++) {
      const xv = s.x[i],
        yv = s.y[i];
      if (!Number.isFinite(xv) || !Number.isFinite(yv) || (opts.logY && yv <= 0)) continue;
      xmin = Math.min(xmin, xv);
      xmax = Math.max(xmax, xv);
      ymin = Math.min(ymin, yv);
      ymax = Math.max(ymax, yv);
    }
  }
  if (!Number.isFinite(xmin)) {
    xmin = 0;
    xmax = 1;
    ymin = opts.logY ? 1 : 0;
    ymax = opts.logY ? 10 : 1;
  }
  if (xmax === xmin) {
    xmin -= 1;
    xmax += 1;
  }
  if (opts.logY) {
    if (ymax === ymin) {
      ymin /= 10;
      ymax *= 10;
    }
  } else {
    const pad = (ymax - ymin) * 0.08 || Math.abs(ymax) * 0.1 || 1;
    ymin = Math.max(ymin >= 0 ? 0 : -Infinity, ymin - pad);
    ymax += pad;
    if (ymin > 0 && ymin < ymax - ymin) ymin = 0;
  }
  const left = m.l,
    right = W - m.r,
    top = m.t,
    bottom = H - m.b;
  const x = (v: number) => left + ((v - xmin) / (xmax - xmin)) * (right - left);
  const ly0 = Math.log10(ymin),
    ly1 = Math.log10(ymax);
  const y = opts.logY
    ? (v: number) => bottom - ((Math.log10(Math.max(v, 1e-300)) - ly0) / (ly1 - ly0 || 1)) * (bottom - top)
    : (v: number) => bottom - ((v - ymin) / (ymax - ymin || 1)) * (bottom - top);

  const axes = svg("g", { class: "pl-axes", "font-size": FONT.tick, fill: "currentColor" });
  axes.appendChild(
    svg("line", { x1: left, y1: bottom, x2: right, y2: bottom, stroke: "currentColor", "stroke-opacity": 0.6 }),
  );
  axes.appendChild(
    svg("line", { x1: left, y1: top, x2: left, y2: bottom, stroke: "currentColor", "stroke-opacity": 0.6 }),
  );
  let xt = opts.xTicks && opts.xTicks.length <= 12 ? opts.xTicks : niceTicks(xmin, xmax, 6);
  // thin out explicit ticks whose labels would collide
  if (opts.xTicks && xt.length > 1) {
    const kept: number[] = [];
    let lastX = -Infinity;
    for (const t of xt) {
      const px = x(t);
      if (px - lastX >= textWidth(fmt(t), FONT.tick) + 6) {
        kept.push(t);
        lastX = px;
      }
    }
    xt = kept;
  }
  for (const t of xt) {
    if (t < xmin - 1e-9 || t > xmax + 1e-9) continue;
    axes.appendChild(svg("line", { x1: x(t), y1: bottom, x2: x(t), y2: bottom + 4, stroke: "currentColor" }));
    axes.appendChild(
      svgText(x(t), bottom + 16, opts.xTicks ? fmt(t) : tickLabel(t, xt.length > 1 ? xt[1] - xt[0] : 1), {
        "text-anchor": "middle",
      }),
    );
  }
  const yt = opts.logY
    ? logTicks(ymin, ymax).filter((t) => t >= ymin * 0.999 && t <= ymax * 1.001)
    : niceTicks(ymin, ymax, 5);
  const ystep = yt.length > 1 ? yt[1] - yt[0] : Math.abs(yt[0] || 1);
  for (const t of yt) {
    axes.appendChild(
      svg("line", { x1: left - 4, y1: y(t), x2: right, y2: y(t), stroke: "currentColor", "stroke-opacity": 0.12 }),
    );
    const label = opts.logY ? fmt(t, 3) : tickLabel(t, ystep);
    axes.appendChild(svgText(left - 6, y(t) + 4, label, { "text-anchor": "end" }));
  }
  if (opts.xLabel)
    axes.appendChild(
      svgText((left + right) / 2, bottom + 34, opts.xLabel, { "text-anchor": "middle", "font-size": FONT.text }),
    );
  if (opts.yLabel)
    axes.appendChild(
      svgText(14, (top + bottom) / 2, opts.yLabel, {
        "text-anchor": "middle",
        "font-size": FONT.text,
        transform: `rotate(-90 14 ${(top + bottom) / 2})`,
      }),
    );
  if (opts.title)
    axes.appendChild(
      svgText(left, 17, opts.title, { "font-weight": "bold", "font-size": FONT.title, class: "pl-chart-title" }),
    );
  root.appendChild(axes);

  const marker = svg("line", {
    class: "pl-marker",
    y1: top,
    y2: bottom,
    stroke: "#d62728",
    "stroke-width": 1.5,
    "stroke-dasharray": "4 3",
  });
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
    g.setAttribute("data-color", col);
    const line = svg("polyline", { points: pts.join(" "), fill: "none", stroke: col, "stroke-width": 1.8 });
    if (s.dash) line.setAttribute("stroke-dasharray", s.dash);
    g.appendChild(line);
    if (s.points) {
      for (const p of pts) {
        const [px, py] = p.split(",");
        g.appendChild(svg("circle", { cx: px, cy: py, r: 2.8, fill: col }));
      }
    }
    root.appendChild(g);
  });

  if (legend.length) {
    const y0 = H - legendH + 8;
    const lg = svg("g", { class: "pl-legend", "font-size": FONT.text, fill: "currentColor" });
    series.forEach((s, i) => {
      const { x: lx, row, label: text } = legend[i];
      const ly = y0 + row * LEG_ROW;
      const item = svg("g", { class: "pl-legend-item", "data-color": s.color ?? colour(i) });
      item.appendChild(
        svg("line", {
          x1: 10 + lx,
          y1: ly,
          x2: 28 + lx,
          y2: ly,
          stroke: s.color ?? colour(i),
          "stroke-width": 2.5,
          ...(s.dash ? { "stroke-dasharray": s.dash } : {}),
        }),
      );
      const label = svgText(32 + lx, ly + 4, text);
      const tip = svg("title");
      tip.textContent = s.name;
      label.appendChild(tip);
      item.appendChild(label);
      lg.appendChild(item);
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

/**
 * A block or layer name as shown to a reader: bare module indices of an `nn.Sequential`
 * (`1`, `4`, `features.4`'s last part alone) get the word "layer", input channel blocks
 * (`input:0`) read "input channel 0". Other names are kept as they are.
 */
export function displayName(name: string): string {
  if (/^\d+$/.test(name)) return `layer ${name}`;
  const m = /^input:(\d+)$/.exec(name);
  if (m) return `input channel ${m[1]}`;
  return name;
}

/** Explanations of the numbers the views show (used as captions and tooltips). */
export const GLOSSARY = {
  energy:
    "% of the energy: the factor's share of the model, ‖F[:, r]‖ · ‖W[:, r]‖ over all blocks, normalised so the factors sum to 100 %. Tiles are labelled with it; larger = the factor explains more of the activations.",
  entropyRank:
    "entropy rank: exp(−Σ pᵢ log pᵢ) with pᵢ = σᵢ / Σσ, the number of singular directions that effectively carry the layer's activations (equal singular values count fully, tiny ones barely).",
  stableRank: "stable rank: ‖X‖²_F / σ₁², how many directions are as strong as the strongest one.",
  spectrum:
    "Top singular values σᵢ of each layer's activation matrix (samples × neurons) on a log scale: a flatter curve means the layer uses more independent directions.",
  blockError:
    "relative error per block: ‖X_b − W_b Fᵀ‖ / ‖X_b‖ for every input channel and layer block; lower is better.",
  unused: "unused neurons: their loading is below the threshold times the layer maximum on every factor.",
} as const;

/** How values map to colours: linear, or square root (shows small loadings next to a few large ones). */
export type ColorScale = "linear" | "sqrt";

/**
 * Values mapped for colouring on `scale` (the square root of non-negative values; others unchanged).
 * With `signed` the square root keeps the sign, sign(v)·√|v|, for the diverging map around 0.
 */
export function scaleValues(values: Float32Array, scale: ColorScale, signed = false): Float32Array {
  if (scale !== "sqrt") return values;
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out[i] = signed && v < 0 ? -Math.sqrt(-v) : Math.sqrt(Math.max(0, v));
  }
  return out;
}

/** A short caption element; the full explanation is also its tooltip. */
export function caption(text: string, cls = ""): HTMLElement {
  const c = h("div", `pl-caption ${cls}`.trim(), text);
  c.title = text;
  return c;
}

/**
 * A colour bar for `lut` over [vmin, vmax] as an SVG (vector: exported as SVG too) with tick
 * values. Horizontal by default (`length` wide); vertical puts 0 at the bottom.
 */
export function colorBar(
  vmin: number,
  vmax: number,
  opts: {
    length?: number;
    thickness?: number;
    label?: string;
    vertical?: boolean;
    lut?: Uint8ClampedArray;
    ticks?: boolean;
    scale?: ColorScale;
  } = {},
): SVGSVGElement {
  const lut = opts.lut ?? CMAP;
  const L = opts.length ?? 160,
    T = opts.thickness ?? 10;
  const sq = opts.scale === "sqrt";
  // a square-root bar over a range around 0 (signed values) is sign(v)·√|v| along the bar
  const root2 = (v: number) => (v < 0 ? -Math.sqrt(-v) : Math.sqrt(v));
  const pos = (v: number) => {
    if (sq && vmin < 0 && vmax > vmin) {
      const lo = root2(vmin),
        hi = root2(vmax);
      return Math.max(0, Math.min(1, (root2(Math.max(vmin, Math.min(vmax, v))) - lo) / (hi - lo)));
    }
    const lin = vmax > vmin ? Math.max(0, Math.min(1, (v - vmin) / (vmax - vmin))) : 0;
    return sq ? Math.sqrt(lin) : lin;
  };
  // about one tick per 40 px (vertical) / 55 px (horizontal), at least the two ends
  const count = Math.max(1, Math.floor(L / (opts.vertical ? 40 : 55))) * (sq ? 2 : 1);
  let nice =
    opts.ticks === false ? [] : niceTicks(vmin, vmax, count).filter((t) => t >= vmin - 1e-12 && t <= vmax + 1e-12);
  const step = nice.length > 1 ? nice[1] - nice[0] : Math.abs(vmax - vmin) || 1;
  if (sq) {
    // on a square-root bar the large ticks crowd together: keep those with room for their label
    const gap = opts.vertical ? 14 : textWidth(tickLabel(vmax, step), FONT.tick) + 8;
    const kept: number[] = [];
    for (const t of nice) if (!kept.length || (pos(t) - pos(kept[kept.length - 1])) * L >= gap) kept.push(t);
    nice = kept;
  }
  const ticks = [...nice];
  const labels = nice.map((t) => tickLabel(t, step));
  // the ends are always labelled (with their own precision when they are not round ticks)
  if (opts.ticks !== false && (!ticks.length || ticks[0] > vmin + 1e-12 * Math.abs(vmax - vmin))) {
    ticks.unshift(vmin);
    labels.unshift(fmt(vmin));
  }
  if (opts.ticks !== false && ticks.length < 2 && vmax > vmin) {
    ticks.push(vmax);
    labels.push(fmt(vmax));
  }
  if (opts.ticks !== false && vmin < 0 && vmax > 0) {
    // a range around 0 (signed values): both ends and 0 labelled, round ticks between where they have room
    const gap = opts.vertical ? 14 : Math.max(textWidth(fmt(vmin), FONT.tick), textWidth(fmt(vmax), FONT.tick)) + 8;
    const kept: { t: number; label: string }[] = [
      { t: vmin, label: fmt(vmin) },
      { t: 0, label: "0" },
      { t: vmax, label: fmt(vmax) },
    ];
    for (const t of nice)
      if (kept.every((k) => Math.abs(pos(t) - pos(k.t)) * L >= gap)) kept.push({ t, label: tickLabel(t, step) });
    kept.sort((a, b) => a.t - b.t);
    ticks.splice(0, ticks.length, ...kept.map((k) => k.t));
    labels.splice(0, labels.length, ...kept.map((k) => k.label));
  }
  const id = `pl-cb-${Math.random().toString(36).slice(2, 9)}`;
  const vertical = !!opts.vertical;
  const labelW = opts.ticks === false ? 0 : Math.max(...labels.map((l) => textWidth(l, FONT.tick)), 10);
  const W = vertical ? T + 8 + labelW + 4 + (opts.label ? 18 : 0) : L + labelW;
  const Hh = vertical ? L + 12 : T + (opts.ticks === false ? 0 : 20) + (opts.label ? 16 : 0);
  const root = svg("svg", {
    width: W,
    height: Hh,
    viewBox: `0 0 ${W} ${Hh}`,
    class: "pl-colorbar",
    "font-size": FONT.tick,
    fill: "currentColor",
    "font-family": "system-ui, sans-serif",
  });
  const defs = svg("defs");
  const grad = svg(
    "linearGradient",
    vertical ? { id, x1: 0, y1: 1, x2: 0, y2: 0 } : { id, x1: 0, y1: 0, x2: 1, y2: 0 },
  );
  for (let i = 0; i <= 16; i++) {
    // the gradient runs along the bar's position; the colour at position p is the table at p
    const k = Math.round((i / 16) * 255) * 3;
    grad.appendChild(
      svg("stop", { offset: `${(i / 16) * 100}%`, "stop-color": `rgb(${lut[k]},${lut[k + 1]},${lut[k + 2]})` }),
    );
  }
  defs.appendChild(grad);
  root.appendChild(defs);
  const x0 = vertical ? 0 : labelW / 2;
  const y0 = vertical ? 6 : 0;
  root.appendChild(
    svg(
      "rect",
      vertical
        ? { x: x0, y: y0, width: T, height: L, fill: `url(#${id})` }
        : { x: x0, y: y0, width: L, height: T, fill: `url(#${id})` },
    ),
  );
  ticks.forEach((t, i) => {
    const p = pos(t);
    const g = svg("g", { class: "pl-cb-tick", "data-value": String(t) });
    if (vertical) {
      const yy = y0 + L - p * L;
      g.appendChild(svg("line", { x1: T, y1: yy, x2: T + 4, y2: yy, stroke: "currentColor" }));
      g.appendChild(svgText(T + 6, yy + 4, labels[i]));
    } else {
      const xx = x0 + p * L;
      g.appendChild(svg("line", { x1: xx, y1: T, x2: xx, y2: T + 4, stroke: "currentColor" }));
      g.appendChild(svgText(xx, T + 15, labels[i], { "text-anchor": "middle" }));
    }
    root.appendChild(g);
  });
  if (opts.label) {
    if (vertical) {
      const cx = W - 6,
        cy = y0 + L / 2;
      root.appendChild(
        svgText(cx, cy, opts.label, {
          "text-anchor": "middle",
          "font-size": FONT.tick,
          transform: `rotate(-90 ${cx} ${cy})`,
        }),
      );
    } else {
      root.appendChild(svgText(x0, Hh - 2, opts.label, { "font-size": FONT.tick }));
    }
  }
  root.dataset.vmin = String(vmin);
  root.dataset.vmax = String(vmax);
  root.dataset.scale = sq ? "sqrt" : "linear";
  return root;
}

const tooltips = new WeakMap<Document, Tooltip>();

/** A tooltip that follows the cursor (fixed position, on the document body, text only). */
export class Tooltip {
  /** The one tooltip of a document, shared by every view in it. */
  static for(doc: Document = document): Tooltip {
    let t = tooltips.get(doc);
    if (!t || !t.el.isConnected) {
      t = new Tooltip(doc);
      tooltips.set(doc, t);
    }
    return t;
  }

  readonly el: HTMLDivElement;
  constructor(doc: Document = document) {
    this.el = doc.createElement("div");
    this.el.className = "pl-tooltip";
    this.el.setAttribute("role", "tooltip");
    this.el.style.display = "none";
    (doc.body ?? doc.documentElement).appendChild(this.el);
  }
  /** Show `lines` (one per row) beside the cursor position of `ev`. */
  show(ev: { clientX: number; clientY: number }, lines: string[]): void {
    const el = this.el;
    while (el.firstChild) el.removeChild(el.firstChild);
    lines.forEach((line, i) => {
      const d = el.ownerDocument.createElement("div");
      d.textContent = line;
      if (i === 0) d.className = "pl-tooltip-head";
      el.appendChild(d);
    });
    el.style.display = "block";
    const win = el.ownerDocument.defaultView;
    const vw = win?.innerWidth ?? 1e6,
      vh = win?.innerHeight ?? 1e6;
    const w = el.offsetWidth || 200,
      hh = el.offsetHeight || 60;
    const left = ev.clientX + 14 + w > vw ? ev.clientX - 14 - w : ev.clientX + 14;
    const top = ev.clientY + 16 + hh > vh ? ev.clientY - 10 - hh : ev.clientY + 16;
    el.style.left = `${Math.max(0, left)}px`;
    el.style.top = `${Math.max(0, top)}px`;
  }
  hide(): void {
    this.el.style.display = "none";
  }
  destroy(): void {
    this.el.remove();
  }
}

/** Keys a focused control handles itself (not passed on to JupyterLab's notebook shortcuts). */
const NAV_KEYS = new Set([
  "ArrowLeft",
  "ArrowRight",
  "ArrowUp",
  "ArrowDown",
  "Home",
  "End",
  "PageUp",
  "PageDown",
  "Enter",
  " ",
]);

const guarded = new WeakSet<object>();

/**
 * JupyterLab handles shortcuts in a keydown listener on the document in the capture phase, so a
 * control cannot stop them by stopping propagation (it runs too late). The window's capture
 * listener runs before the document's: for a navigation key pressed in a control marked by
 * {@link keepKeys} it sets `data-lm-suppress-shortcuts` (Lumino's own opt-out) for the length of
 * that one event. Other keys (Ctrl+S, Esc, ...) still reach JupyterLab.
 */
function guardWindow(win: Window | null): void {
  if (!win || guarded.has(win)) return;
  guarded.add(win);
  win.addEventListener(
    "keydown",
    (ev: KeyboardEvent) => {
      if (!NAV_KEYS.has(ev.key) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const host = (ev.target as Element | null)?.closest?.("[data-pl-keys]");
      if (!host) return;
      host.setAttribute("data-lm-suppress-shortcuts", "true");
      setTimeout(() => host.removeAttribute("data-lm-suppress-shortcuts"), 0); // in case the event never reaches it
    },
    true,
  );
}

/**
 * Keep navigation keys (arrows, Home/End, Page Up/Down, Enter, Space) on `el`: JupyterLab's
 * notebook shortcuts do not see them (see {@link guardWindow}) and they do not bubble to the
 * notebook, which would otherwise move the focus to another cell. Returns the function that
 * removes the listener.
 */
export function keepKeys(el: HTMLElement): () => void {
  el.setAttribute("data-pl-keys", "");
  guardWindow(el.ownerDocument.defaultView);
  const onKey = (ev: KeyboardEvent) => {
    // JupyterLab's capture listener has seen the event by now: lift the opt-out again at once
    el.removeAttribute("data-lm-suppress-shortcuts");
    if (NAV_KEYS.has(ev.key) && !ev.ctrlKey && !ev.metaKey && !ev.altKey) ev.stopPropagation();
  };
  el.addEventListener("keydown", onKey);
  return () => {
    el.removeAttribute("data-pl-keys");
    el.removeEventListener("keydown", onKey);
  };
}

/** The range slider over the swept ranks shared by the rank explorer and compare. */
export function rankSlider(ranks: number[]): {
  bar: HTMLElement;
  input: HTMLInputElement;
  value: HTMLElement;
  setIndex(i: number): void;
  dispose(): void;
} {
  const bar = h("div", "pl-slider");
  const input = h("input");
  input.type = "range";
  input.min = "0";
  input.max = String(Math.max(0, ranks.length - 1));
  input.step = "1";
  input.className = "pl-rank-slider";
  input.setAttribute("aria-label", "rank of the factorization");
  input.title = "rank (arrow keys step through the swept ranks)";
  const lab = h("label", "", "rank");
  const value = h("span", "pl-rank-value");
  bar.append(lab, input, value);
  const dispose = keepKeys(input);
  return {
    bar,
    input,
    value,
    dispose,
    setIndex(i: number) {
      input.value = String(i);
      const r = ranks[i];
      value.textContent = r === undefined ? "" : String(r);
      input.setAttribute("aria-valuetext", r === undefined ? "no ranks" : `rank ${r}`);
    },
  };
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
.pl-view { font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 12px; line-height: 1.35; color: var(--jp-ui-font-color1, #222); }
.pl-view h4 { margin: 4px 0 6px; font-size: 14px; }
.pl-head { display: flex; align-items: baseline; gap: 10px; flex-wrap: wrap; }
.pl-head h4 { flex: 1 1 auto; }
.pl-caption { font-size: 12px; opacity: 0.78; margin: 0 0 6px; max-width: 80ch; }
.pl-row { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
.pl-figure { position: relative; display: inline-flex; flex-direction: column; max-width: 100%; }
.pl-figure > .pl-export { position: absolute; top: 0; right: 0; opacity: 0.35; transition: opacity 0.15s; }
.pl-figure:hover > .pl-export, .pl-figure:focus-within > .pl-export { opacity: 1; }
.pl-export { display: inline-flex; gap: 4px; }
.pl-export button, .pl-toggle button { font: inherit; font-size: 12px; padding: 1px 7px; border: 1px solid var(--jp-border-color1, #bbb); border-radius: 3px; background: var(--jp-layout-color1, #fff); color: inherit; cursor: pointer; }
.pl-export button:hover, .pl-toggle button:hover { background: var(--jp-layout-color2, #eee); }
.pl-export button:focus-visible, .pl-toggle button:focus-visible, .pl-tile:focus-visible, .pl-matrix:focus-visible { outline: 2px solid #1f77b4; outline-offset: 1px; }
.pl-toggle { display: inline-flex; gap: 0; align-items: center; }
.pl-toggle > span { margin-right: 6px; }
.pl-toggle button { border-radius: 0; margin-left: -1px; }
.pl-toggle button:first-of-type { border-radius: 3px 0 0 3px; }
.pl-toggle button:last-of-type { border-radius: 0 3px 3px 0; }
.pl-toggle button[aria-pressed=true] { background: #1f77b4; color: #fff; border-color: #1f77b4; }
.pl-slider { display: flex; gap: 8px; align-items: center; margin: 4px 0 8px; }
.pl-slider input[type=range] { width: 280px; }
.pl-rank-value { font-weight: bold; min-width: 2.5em; }
.pl-latent-gallery { width: 100%; }
.pl-gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(var(--pl-tile-w, 110px), 1fr)); gap: 8px; width: 100%; }
.pl-tile { border: 2px solid transparent; border-radius: 4px; padding: 4px; cursor: pointer; background: var(--jp-layout-color1, #fff); display: flex; flex-direction: column; gap: 3px; align-items: center; min-width: 0; }
.pl-tile:hover { border-color: #9ecae1; }
.pl-tile.pl-selected { border-color: #d62728; }
.pl-tile-title { font-size: 12px; white-space: nowrap; }
.pl-tile-name { font-weight: 600; }
.pl-tile-share { opacity: 0.75; }
.pl-heat { display: flex; flex-direction: column; gap: 10px; }
.pl-layer { border-top: 1px solid var(--jp-border-color2, #ddd); padding-top: 6px; display: flex; flex-direction: column; gap: 4px; }
.pl-layer-title { font-size: 13px; font-weight: 600; }
.pl-layer-controls { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; }
.pl-matrix-fig { display: inline-grid; max-width: 100%; align-self: flex-start; grid-template-columns: max-content max-content fit-content(680px) max-content; justify-content: start; align-items: start; column-gap: 4px; }
.pl-matrix-fig > .pl-axis-x { grid-column: 3; }
.pl-axis-y { writing-mode: vertical-rl; transform: rotate(180deg); text-align: center; font-size: 12px; align-self: center; }
.pl-rowlabels { position: relative; font-size: 11px; text-align: right; min-width: 22px; }
.pl-rowlabels span { position: absolute; right: 2px; transform: translateY(-50%); white-space: nowrap; }
.pl-rowlabels span.pl-on { font-weight: bold; color: #d62728; }
.pl-scroll { overflow-x: auto; overflow-y: hidden; max-width: 100%; }
.pl-scroll-inner { position: relative; }
.pl-axis-x { font-size: 12px; text-align: center; }
.pl-maps { display: flex; flex-wrap: wrap; gap: 6px; align-items: flex-end; }
.pl-map { display: flex; flex-direction: column; align-items: center; font-size: 11px; }
.pl-util { display: flex; align-items: center; gap: 6px; font-size: 12px; }
.pl-util-bar { width: 120px; height: 8px; background: #c6dbef; border-radius: 2px; overflow: hidden; flex: none; }
.pl-util-bar > div { height: 100%; background: #e15759; }
.pl-muted { opacity: 0.75; }
.pl-swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
.pl-compare-galleries { flex-wrap: nowrap; overflow-x: auto; }
.pl-compare-network { flex: 1 1 0; min-width: 280px; }
.pl-chart text { user-select: none; }
.pl-visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.pl-tooltip { position: fixed; z-index: 10000; pointer-events: none; background: rgba(30, 30, 30, 0.92); color: #fff; font: 12px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); padding: 4px 7px; border-radius: 4px; max-width: 320px; box-shadow: 0 1px 4px rgba(0,0,0,0.3); }
.pl-tooltip-head { font-weight: 600; }
`;
