/** Latent image gallery (paper Fig. 2): one tile per factor. */
import { BLUES, clear, colour, ensureStyles, fmt, GREYS, h, makeCanvas, putPixels, imageToRGBA, stackCanvas, svg, svgText } from "./shared";
import type { FactorCallbacks, FactorState, GalleryData, ViewHandle } from "./types";

export interface GalleryOptions {
  /** CSS size of a latent image; default 84. */
  tileSize?: number;
  /** CSS size of a top-input thumbnail; default 26. */
  thumbSize?: number;
  /** Only latent images (no top inputs, no histogram), for side-by-side comparisons. */
  compact?: boolean;
}

/** A strip of the k top inputs of one factor, drawn on one canvas. */
function topStrip(data: GalleryData, factor: number, thumb: number): HTMLCanvasElement | null {
  const t = data.topInputs;
  if (!t || data.topK <= 0) return null;
  const k = data.topK, H = t.height, W = t.width, C = t.channels;
  const c = makeCanvas(W * k, H, thumb * k * (W / Math.max(H, W)), thumb * (H / Math.max(H, W)));
  c.className = "pl-top";
  for (let j = 0; j < k; j++) {
    const idx = factor * k + j;
    if (idx >= t.count) break;
    putPixels(c, imageToRGBA(t.data, idx * H * W * C, H, W, C, GREYS, 0, 1), W, H, j * W, 0);
  }
  return c;
}

function histogram(counts: Int32Array, offset: number, n: number, names: string[] | undefined): SVGSVGElement {
  const W = 120, H = 40, bw = W / Math.max(1, n);
  let mx = 0;
  for (let i = 0; i < n; i++) mx = Math.max(mx, counts[offset + i]);
  const root = svg("svg", { width: W, height: H + 11, class: "pl-hist", "font-size": 8, fill: "currentColor" });
  for (let i = 0; i < n; i++) {
    const v = counts[offset + i];
    const bh = mx > 0 ? (v / mx) * H : 0;
    const r = svg("rect", { x: i * bw + 0.5, y: H - bh, width: Math.max(1, bw - 1), height: bh, fill: colour(i) });
    const tip = svg("title");
    tip.textContent = `${names?.[i] ?? i}: ${v}`;
    r.appendChild(tip);
    root.appendChild(r);
    if (n <= 12) root.appendChild(svgText(i * bw + bw / 2, H + 9, names?.[i] ?? String(i), { "text-anchor": "middle" }));
  }
  return root;
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
  const tileSize = options.tileSize ?? (options.compact ? 56 : 84);
  const thumb = options.thumbSize ?? 26;
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
      const strip = topStrip(data, r, thumb);
      if (strip) tile.appendChild(strip);
      if (data.histograms && data.nClasses > 0) tile.appendChild(histogram(data.histograms, r * data.nClasses, data.nClasses, data.classNames));
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
