import { describe, expect, it } from "vitest";
import {
  BLUES,
  GREYS,
  VIRIDIS,
  fmt,
  h,
  imageToRGBA,
  lineChart,
  logTicks,
  lutIndex,
  nearestIndex,
  niceTicks,
  tickLabel,
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
