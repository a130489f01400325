/**
 * "Save as PNG / SVG" for the drawn views: one chart (an SVG chart or a canvas) or a whole view
 * (its charts and canvases composed at their places on screen). Works offline (data: URLs only).
 */

const SVG_NS = "http://www.w3.org/2000/svg";

function download(href: string, filename: string, doc: Document): void {
  const a = doc.createElement("a");
  a.href = href;
  a.download = filename;
  a.style.display = "none";
  doc.body.appendChild(a);
  a.click();
  a.remove();
}

function svgText(svg: SVGSVGElement): string {
  const copy = svg.cloneNode(true) as SVGSVGElement;
  copy.setAttribute("xmlns", SVG_NS);
  // currentColor resolves against the page; pin it so the file looks the same elsewhere
  const colour = svg.ownerDocument.defaultView?.getComputedStyle(svg).color || "#222";
  copy.setAttribute("color", colour);
  copy.setAttribute("font-family", "sans-serif");
  return new XMLSerializer().serializeToString(copy);
}

function svgDataUrl(svg: SVGSVGElement): string {
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svgText(svg))}`;
}

/** The drawable parts of a view with their boxes relative to `root`. */
function parts(
  root: HTMLElement,
): { node: SVGSVGElement | HTMLCanvasElement; x: number; y: number; w: number; h: number }[] {
  const base = root.getBoundingClientRect();
  const out: { node: SVGSVGElement | HTMLCanvasElement; x: number; y: number; w: number; h: number }[] = [];
  root.querySelectorAll<SVGSVGElement | HTMLCanvasElement>("svg.pl-chart, canvas").forEach((node) => {
    const r = node.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) return;
    out.push({ node, x: r.left - base.left, y: r.top - base.top, w: r.width, h: r.height });
  });
  return out;
}

/** One SVG of a view: its SVG charts nested, its canvases as embedded PNG images. */
export function viewToSvg(root: HTMLElement): string {
  const base = root.getBoundingClientRect();
  const W = Math.max(1, Math.ceil(base.width));
  const H = Math.max(1, Math.ceil(base.height));
  const doc = root.ownerDocument;
  const out = doc.createElementNS(SVG_NS, "svg");
  out.setAttribute("xmlns", SVG_NS);
  out.setAttribute("width", String(W));
  out.setAttribute("height", String(H));
  out.setAttribute("viewBox", `0 0 ${W} ${H}`);
  for (const p of parts(root)) {
    if (p.node instanceof HTMLCanvasElement) {
      const img = doc.createElementNS(SVG_NS, "image");
      img.setAttribute("href", p.node.toDataURL("image/png"));
      img.setAttribute("x", p.x.toFixed(1));
      img.setAttribute("y", p.y.toFixed(1));
      img.setAttribute("width", p.w.toFixed(1));
      img.setAttribute("height", p.h.toFixed(1));
      img.setAttribute("preserveAspectRatio", "none");
      img.setAttribute("style", "image-rendering: pixelated");
      out.appendChild(img);
    } else {
      const copy = new DOMParser().parseFromString(svgText(p.node), "image/svg+xml").documentElement;
      copy.setAttribute("x", p.x.toFixed(1));
      copy.setAttribute("y", p.y.toFixed(1));
      out.appendChild(doc.importNode(copy, true));
    }
  }
  return new XMLSerializer().serializeToString(out);
}

function loadImage(src: string, doc: Document): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const img = doc.createElement("img");
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("peeklens: cannot rasterise the chart"));
    img.src = src;
  });
}

/** A view rendered onto one canvas at `scale` x its size on screen (white background). */
export async function viewToCanvas(root: HTMLElement, scale = 2): Promise<HTMLCanvasElement> {
  const doc = root.ownerDocument;
  const base = root.getBoundingClientRect();
  const c = doc.createElement("canvas");
  c.width = Math.max(1, Math.ceil(base.width * scale));
  c.height = Math.max(1, Math.ceil(base.height * scale));
  const ctx = c.getContext("2d");
  if (!ctx) return c;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.scale(scale, scale);
  for (const p of parts(root)) {
    if (p.node instanceof HTMLCanvasElement) {
      ctx.imageSmoothingEnabled = p.node.classList.contains("pl-hist"); // pixels stay pixels
      ctx.drawImage(p.node, p.x, p.y, p.w, p.h);
    } else {
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(await loadImage(svgDataUrl(p.node), doc), p.x, p.y, p.w, p.h);
    }
  }
  return c;
}

/**
 * Save one chart (an SVG chart or a canvas) or a whole view as `format`; returns the data URL that
 * was offered for download.
 */
export async function exportChart(
  node: SVGSVGElement | HTMLCanvasElement | HTMLElement,
  format: "png" | "svg",
  filename = "peeklens-chart",
): Promise<string> {
  const doc = node.ownerDocument;
  let url: string;
  if (node instanceof HTMLCanvasElement) {
    if (format === "svg") {
      url = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(
        `<svg xmlns="${SVG_NS}" width="${node.width}" height="${node.height}"><image href="${node.toDataURL()}" width="${node.width}" height="${node.height}"/></svg>`,
      )}`;
    } else {
      url = node.toDataURL("image/png");
    }
  } else if (node instanceof SVGSVGElement) {
    if (format === "svg") {
      url = svgDataUrl(node);
    } else {
      const wrap = doc.createElement("div");
      node.parentElement?.insertBefore(wrap, node);
      wrap.appendChild(node);
      try {
        url = (await viewToCanvas(wrap)).toDataURL("image/png");
      } finally {
        wrap.replaceWith(node);
      }
    }
  } else {
    url =
      format === "svg"
        ? `data:image/svg+xml;charset=utf-8,${encodeURIComponent(viewToSvg(node))}`
        : (await viewToCanvas(node)).toDataURL("image/png");
  }
  download(url, `${filename}.${format}`, doc);
  return url;
}

/**
 * A small toolbar with "PNG" and "SVG" buttons that save the view drawn in `target`; put it next
 * to (not inside) the element a view draws into, since views clear their element.
 */
export function exportActions(target: HTMLElement, filename: string): HTMLElement {
  const doc = target.ownerDocument;
  const bar = doc.createElement("span");
  bar.className = "pl-export";
  for (const format of ["png", "svg"] as const) {
    const b = doc.createElement("button");
    b.type = "button";
    b.className = `pl-export-${format}`;
    b.textContent = format.toUpperCase();
    b.title = `save this view as ${format.toUpperCase()}`;
    b.addEventListener("click", () => {
      void exportChart(target, format, filename).catch((e) => {
        b.title = String((e as Error)?.message ?? e);
      });
    });
    bar.appendChild(b);
  }
  return bar;
}

/** Add export toolbars to a section head, for the view drawn in `body`. */
export function addExportActions(head: HTMLElement, body: HTMLElement, filename: string): void {
  head.appendChild(exportActions(body, filename));
}
