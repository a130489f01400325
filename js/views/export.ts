/**
 * "Save as PNG / SVG" for every view: one helper used by all of them.
 *
 * - Vector charts (SVG) export as standalone SVG files, or as PNG (rasterised at 2x).
 * - Canvases (images, matrices) export as PNG.
 * - Composite views (gallery, heatmaps, compare) export one PNG of the whole view, painted from
 *   the live layout: every canvas and SVG at its place, texts, backgrounds and borders.
 *
 * The buttons are ordinary `<button>`s with aria-labels; a click builds the Blob and hands it to
 * {@link saveBlob} (a download link).
 */
import { context2d, h } from "./shared";

const SVG_NS = "http://www.w3.org/2000/svg";

/** A standalone SVG document of a chart: namespaces, size and the text colour resolved. */
export function svgString(el: SVGSVGElement): string {
  const clone = el.cloneNode(true) as SVGSVGElement;
  clone.setAttribute("xmlns", SVG_NS);
  clone.setAttribute("xmlns:xlink", "http://www.w3.org/1999/xlink");
  const vb = el.getAttribute("viewBox")?.split(/\s+/).map(Number);
  if (!clone.getAttribute("width") && vb) clone.setAttribute("width", String(vb[2]));
  if (!clone.getAttribute("height") && vb) clone.setAttribute("height", String(vb[3]));
  // `currentColor` means the page's text colour: write it down, the file has no page around it
  let color = "";
  try {
    color = el.ownerDocument.defaultView?.getComputedStyle(el).color ?? "";
  } catch {
    color = "";
  }
  clone.setAttribute("color", color || "#222");
  clone.setAttribute("style", `color: ${color || "#222"}; background: #fff`);
  if (!clone.getAttribute("font-family")) clone.setAttribute("font-family", "system-ui, sans-serif");
  const text = new XMLSerializer().serializeToString(clone);
  return `<?xml version="1.0" encoding="UTF-8"?>\n${text}`;
}

/** The chart as an `image/svg+xml` Blob. */
export function svgBlob(el: SVGSVGElement): Blob {
  return new Blob([svgString(el)], { type: "image/svg+xml" });
}

/** A canvas as a PNG Blob (rejects when the browser cannot encode it). */
export function canvasBlob(canvas: HTMLCanvasElement): Promise<Blob> {
  return new Promise((resolve, reject) => {
    if (typeof canvas.toBlob !== "function") {
      reject(new Error("this browser cannot encode a canvas as PNG"));
      return;
    }
    canvas.toBlob(
      (b) => (b && b.size > 0 ? resolve(b) : reject(new Error("the canvas could not be encoded as PNG"))),
      "image/png",
    );
  });
}

function newCanvas(
  doc: Document,
  w: number,
  hgt: number,
): { canvas: HTMLCanvasElement; ctx: CanvasRenderingContext2D } {
  const canvas = doc.createElement("canvas");
  canvas.width = Math.max(1, Math.ceil(w));
  canvas.height = Math.max(1, Math.ceil(hgt));
  const ctx = context2d(canvas);
  if (!ctx) throw new Error("this browser has no 2D canvas to draw the PNG on");
  return { canvas, ctx };
}

function loadSvgImage(el: SVGSVGElement): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the chart could not be rasterised"));
    img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svgString(el))}`;
  });
}

function svgSize(el: SVGSVGElement): { w: number; h: number } {
  const vb = el.getAttribute("viewBox")?.split(/\s+/).map(Number);
  const w = Number(el.getAttribute("width")) || vb?.[2] || 300;
  const hh = Number(el.getAttribute("height")) || vb?.[3] || 150;
  return { w, h: hh };
}

/** A chart rasterised to PNG at `scale` x its size, on white. */
export async function svgPngBlob(el: SVGSVGElement, scale = 2): Promise<Blob> {
  const { w, h: hh } = svgSize(el);
  const { canvas, ctx } = newCanvas(el.ownerDocument, w * scale, hh * scale);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const img = await loadSvgImage(el);
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  return canvasBlob(canvas);
}

type Op = (ctx: CanvasRenderingContext2D) => void | Promise<void>;

function visible(style: CSSStyleDeclaration): boolean {
  return style.display !== "none" && style.visibility !== "hidden" && style.opacity !== "0";
}

function transparent(c: string): boolean {
  return !c || c === "transparent" || /rgba\([^)]*,\s*0\)$/.test(c);
}

/**
 * Paint `root` (a whole view) on a canvas: backgrounds, borders, canvases, SVG charts and text
 * at their on-screen places, then encode it as PNG. Export buttons and tooltips are left out.
 */
export async function elementPngBlob(root: HTMLElement, scale = 2): Promise<Blob> {
  const doc = root.ownerDocument;
  const win = doc.defaultView;
  const base = root.getBoundingClientRect();
  const W = Math.max(1, root.scrollWidth || base.width),
    H = Math.max(1, root.scrollHeight || base.height);
  const { canvas, ctx } = newCanvas(doc, W * scale, H * scale);
  ctx.scale(scale, scale);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, H);
  const ops: Op[] = [];
  const style = (e: Element) => win!.getComputedStyle(e);
  const clipped =
    (clip: DOMRect | null, draw: (c: CanvasRenderingContext2D) => void | Promise<void>): Op =>
    async (c) => {
      c.save();
      if (clip) {
        c.beginPath();
        c.rect(clip.left - base.left, clip.top - base.top, clip.width, clip.height);
        c.clip();
      }
      await draw(c);
      c.restore();
    };
  const walk = (node: Node, clip: DOMRect | null) => {
    if (node.nodeType === 3) {
      const raw = node.textContent ?? "";
      // spaces collapsed but kept at the ends: the text box starts where its first (space) character is
      const text = raw.replace(/\s+/g, " ");
      const parent = node.parentElement;
      if (!text.trim() || !parent) return;
      const st = style(parent);
      const range = doc.createRange();
      range.selectNodeContents(node);
      const rects = Array.from(range.getClientRects());
      const font = `${st.fontStyle} ${st.fontWeight} ${st.fontSize} ${st.fontFamily}`;
      const color = st.color;
      const vertical = (st.writingMode ?? "").startsWith("vertical");
      const put = (word: string, r: { left: number; top: number; width: number; height: number }) =>
        ops.push(
          clipped(clip, (c) => {
            c.font = font;
            c.fillStyle = color;
            c.textBaseline = "middle";
            if (vertical) {
              // rotated labels (axis titles): bottom-to-top, centred in their box
              c.translate(r.left - base.left + r.width / 2, r.top - base.top + r.height / 2);
              c.rotate(-Math.PI / 2);
              c.textAlign = "center";
              c.fillText(word, 0, 0);
            } else {
              c.fillText(word, r.left - base.left, r.top - base.top + r.height / 2);
            }
          }),
        );
      if (rects.length <= 1 || vertical) {
        const r = rects[0] ?? range.getBoundingClientRect();
        if (!r || (r.width === 0 && r.height === 0)) return;
        put(text, r);
        return;
      }
      // wrapped text: place each word where the browser put it
      const re = /\S+/g;
      let m: RegExpExecArray | null;
      while ((m = re.exec(raw))) {
        const rr = doc.createRange();
        rr.setStart(node, m.index);
        rr.setEnd(node, m.index + m[0].length);
        const r = rr.getBoundingClientRect();
        if (r.width > 0) put(m[0], r);
      }
      return;
    }
    if (node.nodeType !== 1) return;
    const el = node as HTMLElement;
    if (
      el.classList.contains("pl-export") ||
      el.classList.contains("pl-tooltip") ||
      el.classList.contains("pl-visually-hidden") ||
      el.tagName === "BUTTON" ||
      el.tagName === "INPUT"
    )
      return;
    const st = style(el);
    if (!visible(st)) return;
    const r = el.getBoundingClientRect();
    const x = r.left - base.left,
      y = r.top - base.top;
    if (!transparent(st.backgroundColor) && el !== root) {
      const bg = st.backgroundColor;
      ops.push(
        clipped(clip, (c) => {
          c.fillStyle = bg;
          c.fillRect(x, y, r.width, r.height);
        }),
      );
    }
    // borders, side by side (tick marks are left borders, the row highlight a full box)
    for (const side of ["Top", "Right", "Bottom", "Left"] as const) {
      const bw = parseFloat((st as any)[`border${side}Width`]) || 0;
      const bc = (st as any)[`border${side}Color`] as string;
      if (bw <= 0 || (st as any)[`border${side}Style`] === "none" || transparent(bc)) continue;
      const [x0, y0, x1, y1] =
        side === "Top"
          ? [x, y + bw / 2, x + r.width, y + bw / 2]
          : side === "Bottom"
            ? [x, y + r.height - bw / 2, x + r.width, y + r.height - bw / 2]
            : side === "Left"
              ? [x + bw / 2, y, x + bw / 2, y + r.height]
              : [x + r.width - bw / 2, y, x + r.width - bw / 2, y + r.height];
      ops.push(
        clipped(clip, (c) => {
          c.strokeStyle = bc;
          c.lineWidth = bw;
          c.beginPath();
          c.moveTo(x0, y0);
          c.lineTo(x1, y1);
          c.stroke();
        }),
      );
    }
    const scroll = st.overflowX === "auto" || st.overflowX === "scroll" || st.overflowX === "hidden" ? r : clip;
    const withClip = (draw: (c: CanvasRenderingContext2D) => void | Promise<void>): Op => clipped(scroll, draw);
    if (el.tagName === "CANVAS") {
      const cv = el as unknown as HTMLCanvasElement;
      ops.push(
        withClip((c) => {
          c.imageSmoothingEnabled = st.imageRendering !== "pixelated";
          c.drawImage(cv, x, y, r.width, r.height);
        }),
      );
      return;
    }
    if (el.tagName.toLowerCase() === "svg") {
      const sv = el as unknown as SVGSVGElement;
      const loaded = loadSvgImage(sv);
      ops.push(
        withClip(async (c) => {
          c.drawImage(await loaded, x, y, r.width, r.height);
        }),
      );
      return;
    }
    el.childNodes.forEach((ch) => walk(ch, scroll));
  };
  root.childNodes.forEach((ch) => walk(ch, null));
  for (const op of ops) await op(ctx);
  return canvasBlob(canvas);
}

/** Offer `blob` as a download named `filename`. */
export function saveBlob(blob: Blob, filename: string, doc: Document = document): void {
  const url = URL.createObjectURL(blob);
  const a = doc.createElement("a");
  a.href = url;
  a.download = filename;
  a.style.display = "none";
  (doc.body ?? doc.documentElement).appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A safe file name from a title. */
export function fileName(title: string, ext: string): string {
  const base =
    title
      .normalize("NFKD")
      .replace(/[^\w.-]+/g, "-")
      .replace(/-+/g, "-")
      .replace(/^[-.]+|[-.]+$/g, "")
      .toLowerCase() || "peeklens";
  return `${base.slice(0, 80)}.${ext}`;
}

export interface ExportOptions {
  /** Base of the file names and the buttons' labels, e.g. "RMSE vs rank". */
  name: string;
  /** The vector chart (offers SVG, and PNG rasterised from it). */
  svg?: () => SVGSVGElement | null;
  /** A PNG of the thing (canvas or composite); defaults to rasterising `svg`. */
  png?: () => Promise<Blob>;
  /** Called with each Blob instead of downloading it (tests, or a host that saves elsewhere). */
  onBlob?: (blob: Blob, filename: string) => void;
}

/** The "PNG" / "SVG" buttons of one figure. */
export function exportButtons(opts: ExportOptions): HTMLElement {
  const bar = h("span", "pl-export");
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", `save ${opts.name}`);
  const deliver = (blob: Blob, filename: string) =>
    opts.onBlob ? opts.onBlob(blob, filename) : saveBlob(blob, filename, bar.ownerDocument);
  const fail = (btn: HTMLButtonElement, err: unknown) => {
    btn.title = `could not save: ${String((err as Error)?.message ?? err)}`;
    btn.classList.add("pl-export-failed");
  };
  const png = h("button", "pl-export-png", "PNG");
  png.type = "button";
  png.setAttribute("aria-label", `save ${opts.name} as PNG`);
  png.title = `save ${opts.name} as PNG`;
  png.addEventListener("click", async (ev) => {
    ev.stopPropagation();
    try {
      const sv = opts.svg?.();
      const blob = opts.png ? await opts.png() : sv ? await svgPngBlob(sv) : null;
      if (blob) deliver(blob, fileName(opts.name, "png"));
    } catch (err) {
      fail(png, err);
    }
  });
  bar.appendChild(png);
  if (opts.svg) {
    const sb = h("button", "pl-export-svg", "SVG");
    sb.type = "button";
    sb.setAttribute("aria-label", `save ${opts.name} as SVG`);
    sb.title = `save ${opts.name} as SVG (vector)`;
    sb.addEventListener("click", (ev) => {
      ev.stopPropagation();
      try {
        const sv = opts.svg!();
        if (sv) deliver(svgBlob(sv), fileName(opts.name, "svg"));
      } catch (err) {
        fail(sb, err);
      }
    });
    bar.appendChild(sb);
  }
  return bar;
}

/** Wrap a chart in a figure with its save buttons in the top-right corner. */
export function chartFigure(
  chart: SVGSVGElement,
  name: string,
  onBlob?: (blob: Blob, filename: string) => void,
): HTMLElement {
  const fig = h("div", "pl-figure");
  fig.appendChild(chart);
  fig.appendChild(exportButtons({ name, svg: () => chart, onBlob }));
  return fig;
}

/** Save buttons for a whole view (composite PNG). */
export function viewExport(
  root: () => HTMLElement,
  name: string,
  onBlob?: (blob: Blob, filename: string) => void,
): HTMLElement {
  return exportButtons({ name, png: () => elementPngBlob(root()), onBlob });
}
