import { describe, expect, it, vi } from "vitest";
import { canvasBlob, chartFigure, elementPngBlob, exportButtons, fileName, svgBlob, svgString } from "../views/export";
import {
  BLUES,
  CMAP,
  GREYS,
  VIRIDIS,
  colorBar,
  displayName,
  fmt,
  h,
  imageToRGBA,
  keepKeys,
  legendLayout,
  lineChart,
  logTicks,
  lutIndex,
  nearestIndex,
  niceTicks,
  rankSlider,
  scaleValues,
  textWidth,
  tickLabel,
  Tooltip,
} from "../views/shared";

describe("colour tables", () => {
  it("run from the first to the last stop", () => {
    expect(Array.from(GREYS.slice(0, 3))).toEqual([0, 0, 0]);
    expect(Array.from(GREYS.slice(765, 768))).toEqual([255, 255, 255]);
    expect(Array.from(VIRIDIS.slice(0, 3))).toEqual([68, 1, 84]);
    expect(Array.from(BLUES.slice(0, 3))).toEqual([255, 255, 255]);
  });
  it("clamp values outside vmin..vmax and survive a flat range", () => {
    expect(lutIndex(-1, 0, 1)).toBe(0);
    expect(lutIndex(2, 0, 1)).toBe(255);
    expect(lutIndex(0.5, 0, 1)).toBe(128);
    expect(lutIndex(3, 3, 3)).toBe(0);
    expect(lutIndex(Number.NaN, 0, 1)).toBe(0);
  });
});

describe("imageToRGBA", () => {
  it("maps grey values through the table", () => {
    const px = imageToRGBA(new Float32Array([0, 1, 0.5, 0]), 0, 2, 2, 1, GREYS);
    expect(Array.from(px.slice(0, 8))).toEqual([0, 0, 0, 255, 255, 255, 255, 255]);
    expect(px[8]).toBe(128);
  });
  it("takes RGB channels as they are, from an offset", () => {
    const data = new Float32Array([9, 9, 9, 1, 0, 0, 0, 0.5, 1]);
    const px = imageToRGBA(data, 3, 1, 2, 3);
    expect(Array.from(px)).toEqual([255, 0, 0, 255, 0, 128, 255, 255]);
  });
});

describe("ticks and numbers", () => {
  it("gives round linear ticks inside the range", () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(10, 50, 4)).toEqual([10, 20, 30, 40, 50]);
  });
  it("gives powers of ten for log axes, denser when the range is short", () => {
    expect(logTicks(0.5, 200)).toEqual([0.1, 1, 10, 100, 1000]);
    expect(logTicks(30, 300)).toEqual([10, 20, 50, 100, 200, 500, 1000, 2000, 5000]);
  });
  it("labels ticks with enough decimals to tell them apart", () => {
    const t = niceTicks(0.138, 0.162, 5);
    const labels = t.map((v) => tickLabel(v, t[1] - t[0]));
    expect(new Set(labels).size).toBe(labels.length);
    expect(labels[0]).toBe("0.140");
    expect(tickLabel(20, 10)).toBe("20");
  });
  it("formats compactly", () => {
    expect(fmt(0.123456)).toBe("0.123");
    expect(fmt(123456)).toBe("1.2e+5");
    expect(fmt(0)).toBe("0");
  });
  it("finds the nearest value", () => {
    expect(nearestIndex([10, 20, 40], 33)).toBe(2);
    expect(nearestIndex([10, 20, 40], 14)).toBe(0);
  });
});

describe("text safety", () => {
  it("h() puts text, never markup", () => {
    const e = h("div", "x", "<img src=x onerror=alert(1)>");
    expect(e.querySelector("img")).toBeNull();
    expect(e.textContent).toBe("<img src=x onerror=alert(1)>");
  });
  it("chart legends and titles stay text", () => {
    const { svg } = lineChart(
      [
        { name: "<script>bad()</script>", x: [1, 2], y: [1, 2] },
        { name: "b", x: [1, 2], y: [2, 1] },
      ],
      { title: "<b>t</b>" },
    );
    expect(svg.querySelector("script")).toBeNull();
    expect(svg.querySelector("b")).toBeNull();
    expect(svg.textContent).toContain("<script>bad()</script>");
  });
});

describe("lineChart", () => {
  it("places points by the scales and the marker at the requested x", () => {
    const { svg, geometry, marker } = lineChart([{ name: "a", x: [10, 20, 30], y: [3, 2, 1], points: true }], {
      marker: 20,
    });
    const circles = svg.querySelectorAll("circle");
    expect(circles.length).toBe(3);
    const cy = Array.from(circles).map((c) => Number(c.getAttribute("cy")));
    expect(cy[0]).toBeLessThan(cy[1]); // larger values are higher up
    expect(Number(marker.getAttribute("x1"))).toBeCloseTo(geometry.x(20), 0);
    expect(geometry.x(10)).toBeLessThan(geometry.x(30));
  });
  it("on a log axis spaces decades evenly and skips non-positive values", () => {
    const { svg, geometry } = lineChart([{ name: "s", x: [1, 2, 3, 4], y: [100, 10, 1, 0] }], { logY: true });
    const d1 = geometry.y(10) - geometry.y(100);
    const d2 = geometry.y(1) - geometry.y(10);
    expect(d1).toBeCloseTo(d2, 5);
    const pts = svg.querySelector("polyline")!.getAttribute("points")!.trim().split(" ");
    expect(pts.length).toBe(3);
  });
});

describe("one colour table, colour bars and names", () => {
  it("uses viridis for every magnitude", () => {
    expect(CMAP).toBe(VIRIDIS);
  });
  it("labels a colour bar with round values between its ends", () => {
    const cb = colorBar(0, 1, { length: 160 });
    const ticks = Array.from(cb.querySelectorAll(".pl-cb-tick"));
    expect(ticks.map((t) => Number(t.getAttribute("data-value")))).toEqual([0, 0.5, 1]);
    expect(ticks.map((t) => t.textContent)).toEqual(["0.0", "0.5", "1.0"]);
    // horizontal: larger values further right
    const xs = ticks.map((t) => Number(t.querySelector("line")!.getAttribute("x1")));
    expect(xs[0]).toBeLessThan(xs[1]);
    expect(xs[2] - xs[0]).toBeCloseTo(160, 5);
    expect(cb.querySelectorAll("stop").length).toBe(17);
    expect(cb.querySelector("stop")!.getAttribute("stop-color")).toBe("rgb(68,1,84)");
  });
  it("names the maximum of a short bar, and puts 0 at the bottom of a vertical one", () => {
    const cb = colorBar(0, 17.3, { length: 60, vertical: true, label: "loading" });
    const ticks = Array.from(cb.querySelectorAll(".pl-cb-tick"));
    expect(ticks.map((t) => t.textContent)).toEqual(["0", "17.3"]);
    const ys = ticks.map((t) => Number(t.querySelector("line")!.getAttribute("y1")));
    expect(ys[0]).toBeGreaterThan(ys[1]);
    expect(cb.textContent).toContain("loading");
    expect(colorBar(0, 1, { ticks: false }).querySelectorAll(".pl-cb-tick").length).toBe(0);
  });
  it("places ticks by the square root on a sqrt bar, dropping those without room", () => {
    const cb = colorBar(0, 100, { length: 200, scale: "sqrt" });
    expect(cb.dataset.scale).toBe("sqrt");
    const ticks = Array.from(cb.querySelectorAll(".pl-cb-tick"));
    const vals = ticks.map((t) => Number(t.getAttribute("data-value")));
    const xs = ticks.map((t) => Number(t.querySelector("line")!.getAttribute("x1")));
    const x0 = xs[0];
    vals.forEach((v, i) => expect(xs[i] - x0).toBeCloseTo(200 * Math.sqrt(v / 100), 5));
    for (let i = 1; i < xs.length; i++)
      expect(xs[i] - xs[i - 1]).toBeGreaterThanOrEqual(textWidth("100", 11) + 8 - 1e-9);
    expect(vals[0]).toBe(0);
    expect(Array.from(scaleValues(new Float32Array([4, 9, -1]), "sqrt"))).toEqual([2, 3, 0]);
    const same = new Float32Array([4]);
    expect(scaleValues(same, "linear")).toBe(same);
  });
  it("gives bare Sequential indices and input blocks their context", () => {
    expect(displayName("1")).toBe("layer 1");
    expect(displayName("input:2")).toBe("input channel 2");
    expect(displayName("features.4")).toBe("features.4");
    expect(displayName("relu_1")).toBe("relu_1");
  });
});

describe("chart text and legends", () => {
  const names = ["a rather long network name number one", "second network", "3", "input:0", "x".repeat(60)];
  const series = names.map((n, i) => ({ name: n, x: [1, 2, 3], y: [i + 1, i + 2, i + 3] }));
  it("draws no text below 11 px", () => {
    const { svg } = lineChart(series, { title: "t", xLabel: "x", yLabel: "y" });
    const sizes = Array.from(svg.querySelectorAll("[font-size]")).map((e) => Number(e.getAttribute("font-size")));
    expect(sizes.length).toBeGreaterThan(0);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(11);
    expect(Number(svg.querySelector(".pl-chart-title")!.getAttribute("font-size"))).toBeGreaterThanOrEqual(13);
  });
  it("wraps the legend below the plot inside the chart", () => {
    const W = 300;
    const { svg, geometry } = lineChart(series, { width: W, height: 200 });
    const H = Number(svg.getAttribute("height"));
    expect(H).toBeGreaterThan(200); // grew to fit the legend
    const items = Array.from(svg.querySelectorAll(".pl-legend-item"));
    expect(items.length).toBe(5);
    for (const it of items) {
      const t = it.querySelector("text")!;
      const x = Number(t.getAttribute("x")),
        y = Number(t.getAttribute("y"));
      expect(x + textWidth(t.childNodes[0].textContent!, 12)).toBeLessThanOrEqual(W);
      expect(y).toBeLessThanOrEqual(H);
      expect(y).toBeGreaterThan(geometry.bottom + 30); // below the x axis label
      expect(it.querySelector("title")!.textContent!.length).toBeGreaterThanOrEqual(
        t.childNodes[0].textContent!.replace("…", "").length,
      );
    }
    // the 60-character name is shortened, its full text kept as a tooltip
    expect(items[4].querySelector("title")!.textContent).toBe("x".repeat(60));
    expect(items[4].querySelector("text")!.childNodes[0].textContent).toMatch(/…$/);
    const rows = new Set(legendLayout(names, W - 20).map((e) => e.row));
    expect(rows.size).toBeGreaterThan(1);
    // a long network name with its entropy rank: the name is shortened, the number kept
    const [entry] = legendLayout(["MNIST, 25% of the training set (entropy rank 12.3)"], 320);
    expect(entry.label).toMatch(/^MNIST, 25%.*… \(entropy rank 12\.3\)$/);
    expect(entry.label.length).toBeLessThanOrEqual(40);
  });
});

describe("tooltip at the cursor", () => {
  it("shows text lines beside the cursor and flips at the right edge", () => {
    const t = new Tooltip(document);
    t.show({ clientX: 100, clientY: 50 }, ["relu · factor 1", "<b>channel 2</b>", "loading 0.5"]);
    expect(t.el.parentElement).toBe(document.body);
    expect(t.el.style.display).toBe("block");
    expect(Array.from(t.el.children).map((c) => c.textContent)).toEqual([
      "relu · factor 1",
      "<b>channel 2</b>",
      "loading 0.5",
    ]);
    expect(t.el.querySelector("b")).toBeNull();
    expect(t.el.style.left).toBe("114px");
    expect(t.el.style.top).toBe("66px");
    t.show({ clientX: window.innerWidth - 5, clientY: 50 }, ["x"]);
    expect(parseFloat(t.el.style.left)).toBeLessThan(window.innerWidth - 5);
    t.hide();
    expect(t.el.style.display).toBe("none");
    t.destroy();
    expect(t.el.isConnected).toBe(false);
    expect(Tooltip.for(document)).toBe(Tooltip.for(document));
  });
});

describe("keyboard", () => {
  it("keeps navigation keys on the control: hidden from JupyterLab's shortcuts, not bubbling", async () => {
    const parent = document.createElement("div");
    const el = document.createElement("input");
    parent.appendChild(el);
    document.body.appendChild(parent);
    const bubbled: string[] = [];
    parent.addEventListener("keydown", (e) => bubbled.push((e as KeyboardEvent).key));
    // JupyterLab's shortcut handler: a capture listener on the document that skips events from
    // inside an element with data-lm-suppress-shortcuts (Lumino's CommandRegistry)
    const shortcuts: string[] = [];
    const lab = (e: Event) => {
      if (!(e.target as Element).closest("[data-lm-suppress-shortcuts]")) shortcuts.push((e as KeyboardEvent).key);
    };
    document.addEventListener("keydown", lab, true);
    const off = keepKeys(el);
    const press = async (key: string, ctrlKey = false) => {
      el.dispatchEvent(new KeyboardEvent("keydown", { key, ctrlKey, bubbles: true }));
      expect(el.hasAttribute("data-lm-suppress-shortcuts")).toBe(false); // lifted within the event
    };
    for (const key of ["ArrowLeft", "ArrowUp", "Home", "PageDown", "a", "Escape"]) await press(key);
    await press("ArrowLeft", true); // a chord is JupyterLab's
    expect(shortcuts).toEqual(["a", "Escape", "ArrowLeft"]);
    expect(bubbled).toEqual(["a", "Escape", "ArrowLeft"]);
    await new Promise((r) => setTimeout(r, 5));
    expect(el.hasAttribute("data-lm-suppress-shortcuts")).toBe(false); // only for the one event
    off();
    await press("ArrowRight");
    expect(shortcuts).toEqual(["a", "Escape", "ArrowLeft", "ArrowRight"]);
    expect(bubbled).toEqual(["a", "Escape", "ArrowLeft", "ArrowRight"]);
    document.removeEventListener("keydown", lab, true);
    parent.remove();
  });
  it("labels the rank slider for screen readers", () => {
    const s = rankSlider([10, 20, 40]);
    s.setIndex(1);
    expect(s.input.getAttribute("aria-label")).toBe("rank of the factorization");
    expect(s.input.getAttribute("aria-valuetext")).toBe("rank 20");
    expect(s.value.textContent).toBe("20");
    expect(s.input.value).toBe("1");
  });
});

/** The 8 bytes every PNG file starts with. */
const PNG_SIG = [137, 80, 78, 71, 13, 10, 26, 10];

/**
 * happy-dom has no 2D canvas and no PNG encoder: stand in for both with a context that records
 * what is drawn and an encoder that writes a PNG signature followed by that record. The tests
 * then check what the export code drew, and that the Blob it returns is the encoder's output.
 */
function mockCanvas() {
  const calls: { op: string; args: unknown[] }[] = [];
  const ctx: any = new Proxy(
    {},
    {
      get(target: any, prop: string) {
        if (prop in target) return target[prop];
        return (...args: unknown[]) => {
          calls.push({ op: prop, args });
        };
      },
      set(target: any, prop: string, v: unknown) {
        target[prop] = v;
        return true;
      },
    },
  );
  const getContext = vi
    .spyOn(HTMLCanvasElement.prototype, "getContext")
    .mockImplementation(((kind: string) => (kind === "2d" ? ctx : null)) as any);
  const toBlob = vi.spyOn(HTMLCanvasElement.prototype, "toBlob").mockImplementation(function (
    this: HTMLCanvasElement,
    cb: BlobCallback,
    type?: string,
  ) {
    const body = new TextEncoder().encode(
      JSON.stringify({ w: this.width, h: this.height, calls: calls.map((c) => c.op) }),
    );
    cb(new Blob([new Uint8Array(PNG_SIG), body], { type: type ?? "image/png" }));
  });
  return {
    calls,
    restore: () => {
      getContext.mockRestore();
      toBlob.mockRestore();
    },
  };
}

describe("export: save as PNG / SVG", () => {
  const chart = () =>
    lineChart(
      [
        { name: "a", x: [1, 2, 3], y: [3, 2, 1] },
        { name: "b", x: [1, 2, 3], y: [1, 2, 3] },
      ],
      { title: "RMSE vs rank" },
    ).svg;

  it("writes a chart as a standalone SVG file", async () => {
    const svg = chart();
    const blob = svgBlob(svg);
    expect(blob.type).toBe("image/svg+xml");
    const text = await blob.text();
    expect(text.startsWith("<?xml")).toBe(true);
    expect(text).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(text).toContain("<polyline");
    expect(text).toContain("RMSE vs rank");
    expect(svgString(svg)).toBe(text);
    // parses back as SVG with both series
    const doc = new DOMParser().parseFromString(text.replace(/^<\?xml[^>]*>\s*/, ""), "image/svg+xml");
    expect(doc.querySelectorAll(".pl-series").length).toBe(2);
  });

  it("encodes a canvas as PNG, and fails loudly when the browser cannot", async () => {
    const m = mockCanvas();
    try {
      const c = document.createElement("canvas");
      c.width = 3;
      c.height = 2;
      const blob = await canvasBlob(c);
      expect(blob.type).toBe("image/png");
      expect(Array.from(new Uint8Array(await blob.arrayBuffer()).slice(0, 8))).toEqual(PNG_SIG);
    } finally {
      m.restore();
    }
    const failing = vi.spyOn(HTMLCanvasElement.prototype, "toBlob").mockImplementation((cb: BlobCallback) => cb(null));
    await expect(canvasBlob(document.createElement("canvas"))).rejects.toThrow(/could not be encoded/);
    failing.mockRestore();
  });

  it("paints a whole view: its canvases, charts and texts, at 2x", async () => {
    const m = mockCanvas();
    // SVG charts are rasterised through an <img>; happy-dom loads none, so load it at once
    const RealImage = globalThis.Image;
    const srcs: string[] = [];
    (globalThis as any).Image = class {
      onload: any;
      onerror: any;
      set src(v: string) {
        srcs.push(v);
        setTimeout(() => this.onload?.(), 0);
      }
    };
    try {
      const root = document.createElement("div");
      root.appendChild(h("h4", "", "Latent images (rank 2)"));
      const cv = document.createElement("canvas");
      root.appendChild(cv);
      root.appendChild(chart());
      const bar = exportButtons({ name: "x", png: async () => new Blob() });
      root.appendChild(bar);
      document.body.appendChild(root);
      const box = (l: number, t: number, w: number, hh: number) => () => ({
        left: l,
        top: t,
        width: w,
        height: hh,
        right: l + w,
        bottom: t + hh,
        x: l,
        y: t,
        toJSON() {},
      });
      root.getBoundingClientRect = box(10, 10, 400, 300);
      cv.getBoundingClientRect = box(20, 40, 96, 96);
      // where the browser would put the text (happy-dom does no layout)
      const rects = vi
        .spyOn(Range.prototype, "getClientRects")
        .mockImplementation(() => [box(12, 12, 150, 16)()] as any);
      const blob = await elementPngBlob(root);
      rects.mockRestore();
      expect(blob.type).toBe("image/png");
      expect(blob.size).toBeGreaterThan(8);
      const ops = m.calls.map((c) => c.op);
      expect(ops[0]).toBe("scale");
      expect(m.calls[0].args).toEqual([2, 2]);
      const draws = m.calls.filter((c) => c.op === "drawImage");
      expect(draws.length).toBe(2); // the canvas and the chart
      expect(draws[0].args[0]).toBe(cv);
      expect(draws[0].args.slice(1)).toEqual([10, 30, 96, 96]); // relative to the view
      expect(srcs.length).toBe(1);
      expect(decodeURIComponent(srcs[0])).toContain("RMSE vs rank");
      const texts = m.calls.filter((c) => c.op === "fillText").map((c) => c.args[0]);
      expect(texts).toContain("Latent images (rank 2)");
      const at = m.calls.find((c) => c.op === "fillText")!.args;
      expect(at.slice(1)).toEqual([2, 10]); // left, vertical middle of its box, relative to the view
      expect(texts).not.toContain("PNG"); // the buttons are left out
      root.remove();
    } finally {
      (globalThis as any).Image = RealImage;
      m.restore();
    }
  });

  it("offers PNG and SVG buttons that download a Blob of the right type", async () => {
    const saved: { blob: Blob; name: string }[] = [];
    const create = vi.spyOn(URL, "createObjectURL").mockImplementation((b: Blob | MediaSource) => {
      saved.push({ blob: b as Blob, name: "" });
      return "blob:peeklens";
    });
    const clicks: string[] = [];
    const click = vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(function (this: HTMLAnchorElement) {
      clicks.push(this.download);
    });
    try {
      const svg = chart();
      const fig = chartFigure(svg, "RMSE vs rank");
      document.body.appendChild(fig);
      const svgBtn = fig.querySelector("button.pl-export-svg") as HTMLButtonElement;
      const pngBtn = fig.querySelector("button.pl-export-png") as HTMLButtonElement;
      expect(svgBtn.getAttribute("aria-label")).toBe("save RMSE vs rank as SVG");
      expect(pngBtn.getAttribute("aria-label")).toBe("save RMSE vs rank as PNG");
      svgBtn.click();
      expect(clicks).toEqual(["rmse-vs-rank.svg"]);
      expect(saved[0].blob.type).toBe("image/svg+xml");
      expect(await saved[0].blob.text()).toContain("<polyline");
      // a PNG from a given encoder
      const bar = exportButtons({
        name: "gallery rank 50",
        png: async () => new Blob([new Uint8Array(PNG_SIG)], { type: "image/png" }),
      });
      expect(bar.querySelector(".pl-export-svg")).toBeNull(); // no vector form for a composite
      (bar.querySelector(".pl-export-png") as HTMLButtonElement).click();
      await new Promise((r) => setTimeout(r, 0));
      expect(clicks[1]).toBe("gallery-rank-50.png");
      expect(saved[1].blob.type).toBe("image/png");
      expect(saved[1].blob.size).toBe(8);
      // a failing encoder marks the button instead of pretending
      const bad = exportButtons({
        name: "x",
        png: async () => {
          throw new Error("no canvas");
        },
      });
      const b = bad.querySelector(".pl-export-png") as HTMLButtonElement;
      b.click();
      await new Promise((r) => setTimeout(r, 0));
      expect(b.classList.contains("pl-export-failed")).toBe(true);
      expect(b.title).toContain("no canvas");
      expect(saved.length).toBe(2);
      fig.remove();
    } finally {
      create.mockRestore();
      click.mockRestore();
    }
  });

  it("names files safely", () => {
    expect(fileName("Latent images (rank 50)", "png")).toBe("latent-images-rank-50.png");
    expect(fileName("../<x>", "svg")).toBe("x.svg");
  });
});
