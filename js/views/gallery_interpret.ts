/**
 * The latent gallery's interpretation parts (`pl.explain`): per tile the factor's maximized
 * image(s) next to its latent image, and a toggle that overlays the attribution heatmaps (CMAP,
 * semi-transparent, the hottest region outlined) on the top-input thumbnails. Drawn on the
 * gallery's own canvases, so the view's PNG export includes them.
 */
import { CMAP, context2d, displayName, fmt, GREYS, h, lutIndex, stackCanvas } from "./shared";
import type { GalleryData, GalleryInterpretation } from "./types";

/** Opacity of the heatmap where it is hottest (it fades to 0 where there is no evidence). */
export const OVERLAY_ALPHA = 0.65;
/** Colour of the hottest-region outline. */
const BOX_RGB = [255, 64, 64];

const STYLE_ID = "pl-interpret-styles";
const CSS = `
.pl-pair { display: flex; gap: 4px; align-items: flex-start; justify-content: center; }
.pl-maximized { display: flex; flex-direction: column; gap: 2px; }
.pl-maximized canvas { outline: 1px solid #c8a2e8; }
.pl-maximized-missing { width: var(--pl-max-size, 48px); color: #999; font-size: 10px; text-align: center; }
.pl-interp-toggle { font-size: 11px; cursor: pointer; margin-left: 6px; }
.pl-interp-toggle[aria-pressed="true"] { background: #ede3f7; }
`;

function ensureInterpretStyles(doc: Document): void {
  if (doc.getElementById(STYLE_ID)) return;
  const s = doc.createElement("style");
  s.id = STYLE_ID;
  s.textContent = CSS;
  (doc.head ?? doc.documentElement).appendChild(s);
}

/** Whether the gallery has maximized images to show (full, not compact, mode). */
export function hasMaximized(data: GalleryData): boolean {
  return Boolean(data.interpretation?.maximized);
}

/** Whether the thumbnails have attribution heatmaps. */
export function hasHeat(data: GalleryData): boolean {
  const it = data.interpretation;
  return Boolean(it?.heat && data.topInputs && data.topK > 0 && it.hasHeat.some((v) => v));
}

/** The caption line under the gallery's legend: what the maximized images and the overlay are. */
export function interpretCaption(data: GalleryData): HTMLElement | null {
  const it = data.interpretation;
  if (!it || !(it.maximized || hasHeat(data))) return null;
  const parts: string[] = [];
  if (it.maximized)
    parts.push(
      `Right of each latent image: the input that maximizes the factor in layer ${displayName(it.layer)} ` +
        "(its activation there: the layer's activation dotted with the factor's loadings)",
    );
  if (hasHeat(data))
    parts.push(
      `"attribution" overlays where in each top input that activation comes from (${it.method}; red box: the hottest region)`,
    );
  const done = it.explained.reduce((a, b) => a + b, 0);
  if (done < it.explained.length)
    parts.push(`${done} of ${it.explained.length} factors explained${it.interrupted ? " (interrupted)" : ""}`);
  const el = h("div", "pl-caption pl-interp-caption", `${parts.join("; ")}.`);
  return el;
}

/**
 * Put factor `factor`'s maximized image(s) next to its latent canvas `latent` (in `tile`): both in a
 * row. A factor that was not explained gets a dash.
 */
export function addMaximized(
  tile: HTMLElement,
  latent: HTMLElement,
  data: GalleryData,
  factor: number,
  css: number,
): void {
  const it = data.interpretation;
  if (!it?.maximized) return;
  ensureInterpretStyles(tile.ownerDocument);
  const row = h("div", "pl-pair");
  tile.insertBefore(row, latent);
  row.appendChild(latent);
  const col = h("div", "pl-maximized");
  col.style.setProperty("--pl-max-size", `${css}px`);
  const n = Math.max(1, it.nImages);
  if (!it.explained[factor]) {
    col.appendChild(h("div", "pl-maximized-missing", "–"));
    col.title = `factor ${factor} was not explained`;
  } else {
    const size = n === 1 ? css : Math.max(8, Math.floor((css - 2 * (n - 1)) / n));
    for (let j = 0; j < n; j++) {
      const c = stackCanvas(it.maximized, factor * n + j, size, GREYS, 0, 1);
      c.className = "pl-max";
      c.dataset.factor = String(factor);
      const rel = it.relScore[factor];
      c.title =
        `input that maximizes factor ${factor} in ${it.layer}` +
        (Number.isFinite(rel) ? ` (${fmt(rel, 3)} x the activation of its top input)` : "");
      c.setAttribute("role", "img");
      c.setAttribute("aria-label", c.title);
      col.appendChild(c);
    }
  }
  row.appendChild(col);
}

/**
 * The thumbnails of one factor with heatmap `heat` (values in [0, 1]) laid over `base` (RGBA):
 * `out = (1 - a) base + a CMAP(v)` with `a = OVERLAY_ALPHA * v`, and the box (top, left, height,
 * width) outlined. Pure, for tests and for every front end.
 */
export function overlayRGBA(
  base: Uint8ClampedArray,
  heat: Float32Array,
  offset: number,
  height: number,
  width: number,
  box: ArrayLike<number> | null,
): Uint8ClampedArray {
  const out = new Uint8ClampedArray(base);
  for (let p = 0; p < height * width; p++) {
    const v = Math.min(1, Math.max(0, heat[offset + p]));
    const a = OVERLAY_ALPHA * v;
    const li = lutIndex(v, 0, 1) * 3; // the colour tables are RGB triplets
    for (let c = 0; c < 3; c++) out[p * 4 + c] = (1 - a) * base[p * 4 + c] + a * CMAP[li + c];
    out[p * 4 + 3] = 255;
  }
  if (box && box[2] > 0 && box[3] > 0) {
    const [t, l, bh, bw] = [box[0], box[1], box[2], box[3]];
    const put = (y: number, x: number) => {
      if (y < 0 || x < 0 || y >= height || x >= width) return;
      for (let c = 0; c < 3; c++) out[(y * width + x) * 4 + c] = BOX_RGB[c];
    };
    for (let x = l; x < l + bw; x++) {
      put(t, x);
      put(t + bh - 1, x);
    }
    for (let y = t; y < t + bh; y++) {
      put(y, l);
      put(y, l + bw - 1);
    }
  }
  return out;
}

/** Lay the heatmaps over (or take them off) the top-input canvas of factor `factor`. */
export function paintOverlay(canvas: HTMLCanvasElement, data: GalleryData, factor: number, on: boolean): void {
  const it = data.interpretation as GalleryInterpretation;
  const t = data.topInputs;
  canvas.dataset.overlay = on ? "on" : "off";
  if (!it?.heat || !t) return;
  const ctx = context2d(canvas);
  if (!ctx || typeof ImageData === "undefined") return;
  const store = canvas as HTMLCanvasElement & { _plBase?: ImageData };
  if (!store._plBase) store._plBase = ctx.getImageData(0, 0, canvas.width, canvas.height);
  ctx.putImageData(store._plBase, 0, 0);
  if (!on) return;
  const k = data.topK;
  const H = t.height;
  const W = t.width;
  const cols = Math.max(1, Math.round(canvas.width / W));
  for (let j = 0; j < k; j++) {
    const idx = factor * k + j;
    if (!it.hasHeat[idx] || it.heat.height !== H || it.heat.width !== W) continue;
    const x = (j % cols) * W;
    const y = Math.floor(j / cols) * H;
    const base = ctx.getImageData(x, y, W, H).data;
    const box = it.boxes ? it.boxes.subarray(idx * 4, idx * 4 + 4) : null;
    const rgba = overlayRGBA(base, it.heat.data, idx * H * W, H, W, box);
    ctx.putImageData(new ImageData(rgba as unknown as Uint8ClampedArray<ArrayBuffer>, W, H), x, y);
  }
}

/**
 * The "attribution" toggle button (aria-pressed; Enter / Space as any button) that lays the heatmaps
 * over every tile's thumbnails in `root`. Returns null when there are no heatmaps.
 */
export function overlayToggle(root: HTMLElement, data: GalleryData): HTMLButtonElement | null {
  if (!hasHeat(data)) return null;
  ensureInterpretStyles(root.ownerDocument);
  const b = h("button", "pl-interp-toggle", "attribution") as HTMLButtonElement;
  b.type = "button";
  b.setAttribute("aria-pressed", "false");
  b.title = `overlay the attribution heatmaps (${data.interpretation?.method}) on the top inputs`;
  b.setAttribute("aria-label", b.title);
  b.addEventListener("click", () => {
    const on = b.getAttribute("aria-pressed") !== "true";
    b.setAttribute("aria-pressed", String(on));
    root.dataset.overlay = on ? "on" : "off";
    for (const c of Array.from(root.querySelectorAll<HTMLCanvasElement>(".pl-tile canvas.pl-top"))) {
      const f = Number(c.closest<HTMLElement>(".pl-tile")?.dataset.factor);
      if (Number.isInteger(f)) paintOverlay(c, data, f, on);
    }
  });
  return b;
}
