/**
 * Marks on the latent gallery's top inputs: which sample each thumbnail is (data-sample), and a
 * ring on the thumbnails of the samples selected elsewhere (the bqplot sample explorer's brush or
 * lasso), with a count on the tiles that hold any.
 */
import { h } from "./shared";

const STYLE_ID = "peeklens-gallery-marks";
const CSS = `
.pl-top-wrap { position: relative; display: inline-block; line-height: 0; }
.pl-top-cell { position: absolute; box-sizing: border-box; pointer-events: none; }
.pl-top-cell.pl-hit { outline: 2px solid #d62728; outline-offset: -2px; box-shadow: 0 0 0 1px #fff inset; }
.pl-tile.pl-has-hits { box-shadow: 0 0 0 2px #d6272855; }
.pl-hits { display: none; font-size: 11px; color: #d62728; font-weight: 600; }
.pl-tile.pl-has-hits .pl-hits { display: block; }
`;

function ensureMarkStyles(doc: Document): void {
  if (doc.getElementById(STYLE_ID)) return;
  const st = doc.createElement("style");
  st.id = STYLE_ID;
  st.textContent = CSS;
  doc.head.appendChild(st);
}

/**
 * Wrap a tile's top-input canvas (k thumbnails in `cols` columns) with one invisible cell per
 * thumbnail, each naming its sample (`data-sample`); `markGallery` rings them.
 */
export function wrapTopGrid(
  canvas: HTMLCanvasElement,
  samples: ArrayLike<number>,
  offset: number,
  k: number,
  cols: number,
): HTMLElement {
  ensureMarkStyles(canvas.ownerDocument);
  const wrap = h("span", "pl-top-wrap");
  wrap.appendChild(canvas);
  const rows = Math.ceil(k / Math.max(1, cols));
  for (let j = 0; j < k && offset + j < samples.length; j++) {
    const cell = h("span", "pl-top-cell");
    cell.dataset.sample = String(samples[offset + j]);
    const pct = (v: number) => `${Number(v.toFixed(4))}%`;
    cell.style.left = pct((100 * (j % cols)) / cols);
    cell.style.top = pct((100 * Math.floor(j / cols)) / rows);
    cell.style.width = pct(100 / cols);
    cell.style.height = pct(100 / rows);
    wrap.appendChild(cell);
  }
  return wrap;
}

/** The count badge of a tile (hidden until the tile holds selected samples). */
export function hitsBadge(): HTMLElement {
  return h("span", "pl-hits");
}

/**
 * Ring the thumbnails whose sample is in `highlighted` and write on each tile how many of its
 * top inputs are (`data-hits`, and the badge text). Returns the number of ringed thumbnails.
 */
export function markGallery(root: HTMLElement, highlighted: ArrayLike<number> | null | undefined): number {
  const set = new Set<number>();
  if (highlighted) for (let i = 0; i < highlighted.length; i++) set.add(Number(highlighted[i]));
  let total = 0;
  root.querySelectorAll<HTMLElement>(".pl-tile").forEach((tile) => {
    let hits = 0;
    const cells = tile.querySelectorAll<HTMLElement>(".pl-top-cell, .pl-token-item");
    cells.forEach((cell) => {
      const hit = set.has(Number(cell.dataset.sample));
      cell.classList.toggle("pl-hit", hit);
      if (hit) hits++;
    });
    total += hits;
    tile.dataset.hits = String(hits);
    tile.classList.toggle("pl-has-hits", hits > 0);
    const badge = tile.querySelector<HTMLElement>(".pl-hits");
    if (badge) {
      badge.textContent = hits ? `${hits} of ${cells.length} selected` : "";
      badge.title = hits ? `${hits} of this factor's top inputs are selected in the sample explorer` : "";
    }
  });
  root.dataset.highlighted = String(set.size);
  return total;
}
