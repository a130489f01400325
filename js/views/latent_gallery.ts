/** Latent image gallery (paper Fig. 2): one tile per factor. */
import { viewExport } from "./export";
import { addMaximized, hasMaximized, interpretCaption, overlayToggle } from "./gallery_interpret";
import { hitsBadge, markGallery, wrapTopGrid } from "./gallery_marks";
import { patchRow, tokenList } from "./gallery_tokens";
import {
  caption,
  clear,
  CMAP,
  colorBar,
  colour,
  ensureStyles,
  fmt,
  GLOSSARY,
  GREYS,
  h,
  keepKeys,
  makeCanvas,
  putPixels,
  imageToRGBA,
  stackCanvas,
} from "./shared";
import type { FactorCallbacks, FactorState, GalleryData, ViewHandle } from "./types";

/** The gallery's state: the selected factor, and the samples to ring (the sample explorer's selection). */
export interface GalleryState extends FactorState {
  highlighted?: ArrayLike<number> | null;
}

export interface GalleryOptions {
  /** CSS size of a latent image; default 96 (64 in compact mode). */
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
  const k = data.topK,
    H = t.height,
    W = t.width,
    C = t.channels;
  const cols = k <= 4 ? k : Math.ceil(k / 2);
  const rows = Math.ceil(k / cols);
  const c = makeCanvas(W * cols, H * rows, thumb * cols, thumb * rows * (H / Math.max(1, W)));
  c.className = "pl-top";
  c.title = `the ${k} inputs that load most on factor ${factor}`;
  let ctx: CanvasRenderingContext2D | null = null;
  try {
    ctx = c.getContext("2d");
  } catch {
    ctx = null;
  }
  if (!ctx || typeof ImageData === "undefined") return c;
  for (let j = 0; j < k; j++) {
    const idx = factor * k + j;
    if (idx >= t.count) break;
    putPixels(
      c,
      imageToRGBA(t.data, idx * H * W * C, H, W, C, GREYS, 0, 1),
      W,
      H,
      (j % cols) * W,
      Math.floor(j / cols) * H,
    );
  }
  return c;
}

/** Class histogram of a factor's top inputs on one small canvas; the counts are in its title (text). */
function histogram(
  counts: Int32Array,
  offset: number,
  n: number,
  names: string[] | undefined,
  width: number,
): HTMLCanvasElement {
  const H = 26,
    LAB = n <= 20 ? 13 : 0;
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
  try {
    ctx = c.getContext("2d");
  } catch {
    ctx = null;
  }
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
function labelStrip(
  n: number,
  names: string[] | undefined,
  width: number,
  height: number,
  ratio: number,
): HTMLCanvasElement | null {
  const key = `${n}|${width}|${ratio}|${(names ?? []).join("\u0000")}`;
  let c = labelStrips.get(key);
  if (c) return c;
  c = document.createElement("canvas");
  c.width = width * ratio;
  c.height = height * ratio;
  const ctx = c.getContext("2d");
  if (!ctx) return null;
  ctx.scale(ratio, ratio);
  ctx.fillStyle = "#555";
  ctx.font = "10px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "alphabetic";
  const bw = width / Math.max(1, n);
  // names when they fit their bar at 10 px, else the class index (the names are in the tooltip)
  const fits = (names ?? []).every((s) => ctx.measureText(s).width <= bw + 1);
  const every = bw >= 7 ? 1 : 2;
  for (let i = 0; i < n; i += every) ctx.fillText(fits && names?.[i] ? names[i] : String(i), i * bw + bw / 2, 10);
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
  state: GalleryState,
  callbacks: FactorCallbacks = {},
  options: GalleryOptions = {},
): ViewHandle<GalleryState> {
  ensureStyles(el.ownerDocument);
  clear(el);
  const tileSize = options.tileSize ?? (options.compact ? 64 : 96);
  const rowWidth = !options.compact && hasMaximized(data) ? 2 * tileSize : tileSize; // wider tiles: larger thumbnails
  const thumb =
    options.thumbSize ?? Math.floor(rowWidth / Math.max(1, data.topK <= 4 ? data.topK : Math.ceil(data.topK / 2)));
  const root = h("div", "pl-view pl-latent-gallery");
  const title = data.title ?? `Latent images (rank ${data.rank})`;
  const head = h("div", "pl-head");
  head.appendChild(h("h4", "", title));
  head.appendChild(viewExport(() => root, title));
  const toggle = options.compact ? null : overlayToggle(root, data); // pl.explain's attribution overlay
  if (toggle) head.appendChild(toggle);
  root.appendChild(head);
  const lat = data.latents;
  if (!options.compact && lat.count === 0 && data.topTexts) {
    root.appendChild(caption(`each factor's ${data.topK} top tokens, [the token] with its context in the input`));
  } else if (!options.compact && lat.count === 0 && data.topPatches) {
    root.appendChild(caption(`each factor's ${data.topK} top image patches (framed) with their neighbours`));
  } else if (!options.compact) {
    const cap = h("div", "pl-caption pl-legend-row");
    cap.title = GLOSSARY.energy;
    const parts = [lat.channels >= 3 ? "latent image (RGB)" : "latent image: the factor's input loadings, 0"];
    cap.appendChild(h("span", "", parts[0]));
    if (lat.channels < 3) {
      const cb = colorBar(0, 1, { length: 80, thickness: 10, ticks: false });
      cb.style.verticalAlign = "middle";
      cb.style.margin = "0 4px";
      cap.appendChild(cb);
      cap.appendChild(h("span", "", "its maximum"));
    }
    const rest = [
      data.topInputs && data.topK > 0 ? `; below, its ${data.topK} top inputs` : "",
      data.histograms && data.nClasses > 0 ? " and their labels" : "",
      data.strength ? ". % = the factor's share of the model's energy (hover for the definition)." : ".",
    ].join("");
    cap.appendChild(h("span", "", rest));
    root.appendChild(cap);
    const interp = interpretCaption(data);
    if (interp) root.appendChild(interp);
  } else if (data.strength) {
    root.appendChild(caption("% = share of the model's energy carried by the factor"));
  }
  const grid = h("div", "pl-gallery");
  grid.style.setProperty("--pl-tile-w", `${tileSize + 12}px`);
  if (!options.compact && hasMaximized(data)) grid.style.setProperty("--pl-tile-w", `${2 * tileSize + 16}px`);
  // token samples: text in context and image patches need room
  const tokenTiles = !options.compact && !!(data.topTexts || data.topPatches);
  if (tokenTiles) grid.style.setProperty("--pl-tile-w", `${2 * tileSize + 40}px`);
  grid.setAttribute("role", "group");
  grid.setAttribute(
    "aria-label",
    `${title}: ${data.rank} factors; Enter or Space selects a factor, arrow keys move between them`,
  );
  const tiles: HTMLElement[] = [];
  for (let r = 0; r < data.rank; r++) {
    const tile = h("div", "pl-tile");
    tile.dataset.factor = String(r);
    tile.setAttribute("role", "button");
    tile.setAttribute("tabindex", "0");
    const s = data.strength?.[r];
    const t = h("span", "pl-tile-title");
    t.appendChild(h("span", "pl-tile-name", `factor ${r}`));
    if (s !== undefined) {
      t.appendChild(h("span", "pl-tile-share", ` · ${fmt(100 * s, 2)}%`));
      t.title = `${fmt(100 * s, 3)}% of the energy. ${GLOSSARY.energy}`;
    }
    tile.appendChild(t);
    tile.appendChild(hitsBadge());
    tile.setAttribute(
      "aria-label",
      s !== undefined ? `factor ${r}, ${fmt(100 * s, 2)} percent of the energy` : `factor ${r}`,
    );
    if (lat.count > r) {
      const c = stackCanvas(lat, r, tileSize, lat.channels >= 3 ? GREYS : CMAP, 0, 1);
      c.className = "pl-latent";
      tile.appendChild(c);
      if (!options.compact) addMaximized(tile, c, data, r, tileSize); // beside the latent image
    }
    if (!options.compact && data.topTexts && data.topK > 0)
      tile.appendChild(tokenList(el.ownerDocument, data.topTexts, data.topSamples, r * data.topK, data.topK));
    if (!options.compact && data.topPatches && data.topK > 0) {
      const size = Math.floor((2 * tileSize + 28) / Math.min(4, data.topK)) - 6;
      tile.appendChild(patchRow(el.ownerDocument, data.topPatches, data.topSamples, r * data.topK, data.topK, size));
    }
    if (!options.compact) {
      const grid = topGrid(data, r, thumb);
      if (grid && data.topSamples) {
        const cols = data.topK <= 4 ? data.topK : Math.ceil(data.topK / 2);
        tile.appendChild(wrapTopGrid(grid, data.topSamples, r * data.topK, data.topK, cols));
      } else if (grid) tile.appendChild(grid);
      if (data.histograms && data.nClasses > 0)
        tile.appendChild(histogram(data.histograms, r * data.nClasses, data.nClasses, data.classNames, tileSize));
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
    const t = (ev.target as Element | null)?.closest?.(".pl-tile") as HTMLElement | null;
    if (!t) return;
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault(); // Space would scroll the page
      onClick(ev);
    } else if (ev.key === "ArrowRight" || ev.key === "ArrowLeft" || ev.key === "Home" || ev.key === "End") {
      ev.preventDefault();
      const i = Number(t.dataset.factor);
      const j = ev.key === "Home" ? 0 : ev.key === "End" ? tiles.length - 1 : i + (ev.key === "ArrowRight" ? 1 : -1);
      tiles[Math.max(0, Math.min(tiles.length - 1, j))]?.focus();
    }
  };
  const offKeys = keepKeys(grid);
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
  markGallery(root, state.highlighted);
  return {
    update(s: GalleryState) {
      select(s.factor);
      markGallery(root, s.highlighted);
    },
    destroy() {
      grid.removeEventListener("click", onClick);
      grid.removeEventListener("keydown", onKey);
      offKeys();
      clear(el);
    },
  };
}
