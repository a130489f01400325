/** Latent image gallery (paper Fig. 2): one tile per factor. */
import { BLUES, clear, colour, ensureStyles, fmt, GREYS, h, makeCanvas, putPixels, imageToRGBA, stackCanvas } from "./shared";
import type { FactorCallbacks, FactorState, GalleryData, ViewHandle } from "./types";

export interface GalleryOptions {
  /** CSS size of a latent image; default 84. */
  tileSize?: number;
  /** CSS size of a top-input thumbnail; default 26. */
  thumbSize?: number;
  /** Only latent images (no top inputs, no histogram), for side-by-side comparisons. */
  compact?: boolean;
}

/** The k top inputs of one factor on one canvas: one row for k <= 4, else two rows. */
function topGrid(data: GalleryData, factor: number, thumb: number): HTMLCanvasElement | null {
  const t = data.topInputs;
  if (!t || data.topK <= 0) return null;
  const k = data.topK, H = t.height, W = t.width, C = t.channels;
  const cols = k <= 4 ? k : Math.ceil(k / 2);
  const rows = Math.ceil(k / cols);
  const c = makeCanvas(W * cols, H * rows, thumb * cols, thumb * rows * (H / Math.max(1, W)));
  c.className = "pl-top";
  c.title = `the ${k} inputs that load most on factor ${factor}`;
  let ctx: CanvasRenderingContext2D | null = null;
  try { ctx = c.getContext("2d"); } catch { ctx = null; }
  if (!ctx || typeof ImageData === "undefined") return c;
  for (let j = 0; j < k; j++) {
    const idx = factor * k + j;
    if (idx >= t.count) break;
    putPixels(c, imageToRGBA(t.data, idx * H * W * C, H, W, C, GREYS, 0, 1), W, H, (j % cols) * W, Math.floor(j / cols) * H);
  }
  return c;
}

/** Class histogram of a factor's top inputs on one small canvas; the counts are in its title (text). */
function histogram(counts: Int32Array, offset: number, n: number, names: string[] | undefined, width: number): HTMLCanvasElement {
  const H = 22, LAB = n <= 12 ? 9 : 0;
  const ratio = 2; // crisp on high-DPI screens
  const c = makeCanvas(width * ratio, (H + LAB) * ratio, width, H + LAB);
  c.className = "pl-hist";
  c.style.imageRendering = "auto";
  const parts: string[] = [];
  let mx = 0;
  for (let i = 0; i < n; i++) {
    mx = Math.max(mx, counts[offset + i]);
    parts.push(`${names?.[i] ?? i}: ${counts[offset + i]}`);
  }
  c.title = `labels of the top inputs: ${parts.join(", ")}`;
  c.dataset.counts = Array.from(counts.subarray(offset, offset + n)).join(",");
  let ctx: CanvasRenderingContext2D | null = null;
  try { ctx = c.getContext("2d"); } catch { ctx = null; }
  if (!ctx) return c;
  ctx.scale(ratio, ratio);
  const bw = width / Math.max(1, n);
  for (let i = 0; i < n; i++) {
    const v = counts[offset + i];
    const bh = mx > 0 ? (v / mx) * H : 0;
    ctx.fillStyle = colour(i);
    ctx.fillRect(i * bw + 0.5, H - bh, Math.max(1, bw - 1), bh);
  }
  if (LAB) {
    const lab = labelStrip(n, names, width, LAB, ratio);
    if (lab) ctx.drawImage(lab, 0, H, width, LAB);
  }
  return c;
}

/** The class labels under a histogram, drawn once per (classes, width) and reused by every tile. */
const labelStrips = new Map<string, HTMLCanvasElement>();
function labelStrip(n: number, names: string[] | undefined, width: number, height: number, ratio: number): HTMLCanvasElement | null {
  const key = `${n}|${width}|${ratio}|${(names ?? []).join("\u0000")}`;
  let c = labelStrips.get(key);
  if (c) return c;
  c = document.createElement("canvas");
  c.width = width * ratio;
  c.height = height * ratio;
  const ctx = c.getContext("2d");
  if (!ctx) return null;
  ctx.scale(ratio, ratio);
  ctx.fillStyle = "#666";
  ctx.font = "7px sans-serif";
  ctx.textAlign = "center";
  const bw = width / Math.max(1, n);
  for (let i = 0; i < n; i++) ctx.fillText((names?.[i] ?? String(i)).slice(0, 3), i * bw + bw / 2, 7);
  if (labelStrips.size > 32) labelStrips.clear();
  labelStrips.set(key, c);
  return c;
}

/**
 * Draw the gallery of one factorization into `el`: per factor the latent image, the top-k inputs
 * and the class histogram of those inputs. Clicking a tile calls `callbacks.onFactor(r)`;
 * `handle.update({factor})` moves the highlight.
 */
export function renderLatentGallery(
  el: HTMLElement,
  data: GalleryData,
  state: FactorState,
  callbacks: FactorCallbacks = {},
  options: GalleryOptions = {},
): ViewHandle<FactorState> {
  ensureStyles(el.ownerDocument);
  clear(el);
  const tileSize = options.tileSize ?? (options.compact ? 56 : 72);
  const thumb = options.thumbSize ?? Math.floor(tileSize / Math.max(1, data.topK <= 4 ? data.topK : Math.ceil(data.topK / 2)));
  const root = h("div", "pl-view pl-latent-gallery");
  root.appendChild(h("h4", "", data.title ?? `Latent images (rank ${data.rank})`));
  const grid = h("div", "pl-gallery");
  const tiles: HTMLElement[] = [];
  const lat = data.latents;
  for (let r = 0; r < data.rank; r++) {
    const tile = h("div", "pl-tile");
    tile.dataset.factor = String(r);
    tile.setAttribute("role", "button");
    tile.setAttribute("tabindex", "0");
    const s = data.strength?.[r];
    tile.appendChild(h("span", "pl-tile-title", s !== undefined ? `factor ${r} · ${fmt(100 * s, 2)}%` : `factor ${r}`));
    const c = stackCanvas(lat, r, tileSize, lat.channels >= 3 ? GREYS : BLUES, 0, 1);
    c.className = "pl-latent";
    tile.appendChild(c);
    if (!options.compact) {
      const grid = topGrid(data, r, thumb);
      if (grid) tile.appendChild(grid);
      if (data.histograms && data.nClasses > 0) tile.appendChild(histogram(data.histograms, r * data.nClasses, data.nClasses, data.classNames, tileSize));
    }
    tiles.push(tile);
    grid.appendChild(tile);
  }
  root.appendChild(grid);
  el.appendChild(root);

  const onClick = (ev: Event) => {
    const t = (ev.target as Element | null)?.closest?.(".pl-tile") as HTMLElement | null;
    if (!t || !grid.contains(t)) return;
    const f = Number(t.dataset.factor);
    select(f);
    callbacks.onFactor?.(f);
  };
  const onKey = (ev: KeyboardEvent) => {
    if (ev.key === "Enter" || ev.key === " ") onClick(ev);
  };
  grid.addEventListener("click", onClick);
  grid.addEventListener("keydown", onKey);

  const select = (f: number) => {
    tiles.forEach((t, i) => {
      t.classList.toggle("pl-selected", i === f);
      t.setAttribute("aria-pressed", String(i === f));
    });
    root.dataset.factor = String(f);
  };
  select(state.factor);
  return {
    update(s: FactorState) {
      select(s.factor);
    },
    destroy() {
      grid.removeEventListener("click", onClick);
      grid.removeEventListener("keydown", onKey);
      clear(el);
    },
  };
}
