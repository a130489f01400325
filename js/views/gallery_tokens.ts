/**
 * Token samples in the latent gallery: each factor's top samples as text (the token in brackets with
 * a few tokens of context from its input, as `display.text` keeps it), one list item per sample.
 */
import { GREYS, h, imageToRGBA, makeCanvas, putPixels } from "./shared";
import type { ImageStack } from "./types";

const STYLE_ID = "peeklens-gallery-tokens";
const CSS = `
.pl-top-text { list-style: none; margin: 0; padding: 0; width: 100%; font-family: var(--jp-code-font-family, monospace); font-size: 11px; line-height: 1.35; }
.pl-top-text li { white-space: normal; overflow-wrap: anywhere; padding: 0 2px; margin-bottom: 1px; border-radius: 2px; border: 1px solid transparent; }
.pl-top-text li.pl-hit { border-color: #d62728; }
.pl-top-patches { display: flex; flex-wrap: wrap; gap: 2px; justify-content: center; }
.pl-patch { border: 2px solid transparent; border-radius: 2px; }
.pl-patch.pl-hit { border-color: #d62728; }
.pl-token-focus { font-weight: 700; background: #fde68a; color: #111; border-radius: 2px; padding: 0 1px; }
`;

function ensureTokenStyles(doc: Document): void {
  if (doc.getElementById(STYLE_ID)) return;
  const st = doc.createElement("style");
  st.id = STYLE_ID;
  st.textContent = CSS;
  doc.head.appendChild(st);
}

/**
 * One factor's top image-patch samples: each crop (the patch with its neighbours) on a canvas with the
 * patch framed in red, titled with its place in the patch grid.
 */
export function patchRow(
  doc: Document,
  patches: { images: ImageStack; boxes: Int32Array; cells: Int32Array },
  samples: ArrayLike<number> | null | undefined,
  offset: number,
  k: number,
  size: number,
): HTMLElement {
  ensureTokenStyles(doc);
  const row = h("div", "pl-top-patches");
  const { images, boxes, cells } = patches;
  const { height: H, width: W, channels: C } = images;
  for (let j = 0; j < k && offset + j < images.count; j++) {
    const i = offset + j;
    const c = makeCanvas(W, H, size, (size * H) / Math.max(1, W));
    c.className = "pl-patch pl-token-item";
    if (samples) c.dataset.sample = String(samples[i]);
    const [top, left, bh, bw] = Array.from(boxes.subarray(4 * i, 4 * i + 4));
    const [r, col] = Array.from(cells.subarray(2 * i, 2 * i + 2));
    c.dataset.cell = `${r},${col}`;
    c.title = r >= 0 ? `patch at row ${r}, column ${col} of its image (framed)` : "a token without a patch (e.g. CLS)";
    let ctx: CanvasRenderingContext2D | null = null;
    try {
      ctx = c.getContext("2d");
    } catch {
      ctx = null;
    }
    if (ctx && typeof ImageData !== "undefined") {
      putPixels(c, imageToRGBA(images.data, i * H * W * C, H, W, C, GREYS, 0, 1), W, H);
      if (top >= 0) {
        ctx.strokeStyle = "#d62728";
        ctx.lineWidth = Math.max(1, Math.round(W / 24));
        ctx.strokeRect(left + 0.5, top + 0.5, bw - 1, bh - 1);
      }
    }
    row.appendChild(c);
  }
  return row;
}

/** A token sample's text split around its bracketed token: [before, token, after]. */
export function splitFocus(text: string): [string, string, string] {
  const a = text.indexOf("[");
  const b = a >= 0 ? text.indexOf("]", a + 1) : -1;
  if (a < 0 || b < 0) return ["", text, ""];
  return [text.slice(0, a), text.slice(a + 1, b), text.slice(b + 1)];
}

/** The list of one factor's top token samples (`samples` and `texts` aligned, factor-major, k per factor). */
export function tokenList(
  doc: Document,
  texts: ArrayLike<string>,
  samples: ArrayLike<number> | null | undefined,
  offset: number,
  k: number,
): HTMLElement {
  ensureTokenStyles(doc);
  const ol = h("ol", "pl-top-text");
  ol.setAttribute("aria-label", `the ${k} tokens that load most on this factor`);
  for (let j = 0; j < k && offset + j < texts.length; j++) {
    const li = h("li", "pl-token-item");
    const [before, token, after] = splitFocus(String(texts[offset + j]));
    li.appendChild(doc.createTextNode(before));
    li.appendChild(h("span", "pl-token-focus", token));
    li.appendChild(doc.createTextNode(after));
    li.title = String(texts[offset + j]);
    if (samples) li.dataset.sample = String(samples[offset + j]);
    ol.appendChild(li);
  }
  return ol;
}
