/**
 * pl.explain in the views: the schema's `interpretation` section read from a file written by
 * `pl.save` (tests/interpret/make_interpret_fixture.py), aligned with the gallery's thumbnails, and
 * drawn in the latent gallery's tiles (maximized image, attribution overlay toggle).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { strFromU8, unzipSync } from "fflate";
import { beforeAll, describe, expect, it } from "vitest";
import { BufferSource, interpretedLayers, Results, topInputsAmong, ZipSource } from "../core/index";
import { OVERLAY_ALPHA, overlayRGBA } from "../views/gallery_interpret";
import { renderLatentGallery } from "../views/latent_gallery";
import { CMAP } from "../views/shared";
import type { GalleryData, GalleryInterpretation } from "../views/types";
import * as latentGallery from "../widgets/latent_gallery";
import { FakeModel, rand, settle } from "./fake_model";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
let dir = "";
let expected: any;

function python(): string {
  if (process.env.PEEKLENS_PYTHON) return process.env.PEEKLENS_PYTHON;
  const venv = path.join(repo, ".venv", "bin", "python");
  return existsSync(venv) ? venv : "python3";
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "peeklens-interpret-"));
  execFileSync(python(), [path.join(repo, "tests", "interpret", "make_interpret_fixture.py"), dir], {
    stdio: "inherit",
  });
  expected = JSON.parse(readFileSync(path.join(dir, "interpret_expected.json"), "utf-8"));
}, 120_000);

async function explained(): Promise<Results> {
  const bytes = new Uint8Array(readFileSync(path.join(dir, "explained.peeklens")));
  return new Results(await ZipSource.open(new BufferSource(bytes), "explained.peeklens"));
}

function close(a: ArrayLike<number>, b: number[], tol = 1e-6): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < b.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(tol);
}

describe("interpretation section read from a .peeklens file", () => {
  it("gives maximized images per factor and a heatmap per thumbnail, matched by sample index", async () => {
    const r = await explained();
    expect(interpretedLayers(r.fit(3))).toEqual(["1"]);
    const g = (await r.galleryData(3))!;
    const it = g.interpretation!;
    expect(it.layer).toBe("1");
    expect(it.method).toBe("spatial");
    expect(Array.from(it.explained)).toEqual([1, 0, 1]); // factor 1 was left out
    expect(it.nImages).toBe(2);
    expect([it.maximized!.count, it.maximized!.height, it.maximized!.width, it.maximized!.channels]).toEqual([
      6, 8, 8, 1,
    ]);
    const per = 8 * 8;
    expected.factors.forEach((f: number, row: number) => {
      for (let j = 0; j < 2; j++) {
        const got = it.maximized!.data.subarray((f * 2 + j) * per, (f * 2 + j + 1) * per);
        close(got, expected.maximized[row][j].flat(2));
      }
      expect(it.relScore[f]).toBeCloseTo(expected.rel[row], 5);
    });
    expect(Number.isNaN(it.relScore[1])).toBe(true);
    // the thumbnails the gallery shows (display top_k 3) and their heatmaps (4 stored per factor)
    expect(g.topK).toBe(3);
    const F = await r.F(3);
    const display = (await r.source.getArray(r.display!.samples!)).data;
    const top = topInputsAmong(F, display, 3);
    let matched = 0;
    expected.factors.forEach((f: number, row: number) => {
      for (let j = 0; j < 3; j++) {
        const s = top[f * 3 + j];
        const t = expected.samples[row].indexOf(s);
        expect(t).toBeGreaterThanOrEqual(0); // explain's top_k >= the display's: every thumbnail has one
        expect(it.hasHeat[f * 3 + j]).toBe(1);
        close(it.heat!.data.subarray((f * 3 + j) * per, (f * 3 + j + 1) * per), expected.heatmaps[row][t].flat());
        expect(Array.from(it.boxes!.subarray((f * 3 + j) * 4, (f * 3 + j + 1) * 4))).toEqual(expected.boxes[row][t]);
        matched++;
      }
    });
    expect(matched).toBe(6);
    expect(Array.from(it.hasHeat.subarray(3, 6))).toEqual([0, 0, 0]);
    // a rank without the section, and an unknown layer
    expect((await r.galleryData(2))!.interpretation).toBeNull();
    expect((await r.galleryData(3, { interpretLayer: "fc" }))!.interpretation).toBeNull();
    expect((await r.galleryData(3, { interpretLayer: "1" }))!.interpretation!.layer).toBe("1");
  });

  it("the gallery of the file shows the maximized canvases beside the latent images", async () => {
    const r = await explained();
    const el = document.createElement("div");
    renderLatentGallery(el, (await r.galleryData(3))!, { factor: 0 });
    const tiles = el.querySelectorAll(".pl-tile");
    expect(tiles.length).toBe(3);
    expect(tiles[0].querySelectorAll(".pl-pair canvas.pl-latent + .pl-maximized canvas.pl-max").length).toBe(2);
    expect(tiles[1].querySelectorAll("canvas.pl-max").length).toBe(0);
    expect(tiles[1].querySelector(".pl-maximized-missing")).not.toBeNull();
    expect(el.querySelector(".pl-interp-caption")!.textContent).toMatch(/2 of 3 factors explained/);
  });
});

describe("gallery widget", () => {
  it("shows the explained layer from the synced payload and follows interpret_layer", async () => {
    // the file's arrays as raw little-endian buffers, as ipywidgets sends the payload's bytes traits
    const files = unzipSync(new Uint8Array(readFileSync(path.join(dir, "explained.peeklens"))));
    const meta = JSON.parse(strFromU8(files["meta.json"]));
    const arrays: Record<string, Uint8Array> = {};
    for (const key of Object.keys(meta.shapes)) {
      const npy = files[`${key}.npy`];
      const start =
        npy[6] === 1 ? 10 + (npy[8] | (npy[9] << 8)) : 12 + new DataView(npy.buffer, npy.byteOffset).getUint32(8, true);
      arrays[key] = npy.slice(start);
    }
    const model = new FakeModel({ ranks: [2, 3], rank: 3, factor: 0, hist_k: 5, interpret_layer: "", meta, arrays });
    const el = document.createElement("div");
    const cleanup = await latentGallery.default.render({ model, el });
    await settle();
    expect(el.querySelectorAll("canvas.pl-max").length).toBe(4); // factors 0 and 2, two images each
    expect(el.querySelector("button.pl-interp-toggle")).not.toBeNull();
    model.set("interpret_layer", "other");
    await settle();
    expect(el.querySelectorAll(".pl-tile").length).toBe(3);
    expect(el.querySelectorAll("canvas.pl-max").length).toBe(0);
    cleanup();
  });
});

function interp(rank: number, k: number, heat = true): GalleryInterpretation {
  const hw = 4 * 5;
  return {
    layer: "relu",
    layers: ["relu"],
    method: "spatial",
    maximized: { data: rand(rank * hw, 3), count: rank, height: 4, width: 5, channels: 1 },
    nImages: 1,
    explained: new Uint8Array(rank).fill(1),
    relScore: new Float32Array(rank).fill(1.5),
    heat: heat ? { data: rand(rank * k * hw, 5), count: rank * k, height: 4, width: 5, channels: 1 } : null,
    hasHeat: new Uint8Array(rank * k).fill(heat ? 1 : 0),
    boxes: heat ? new Int32Array(rank * k * 4).map((_, i) => [1, 1, 2, 2][i % 4]) : null,
    interrupted: false,
  };
}

function gallery(rank: number, k = 3, withInterp = true): GalleryData {
  return {
    rank,
    latents: { data: rand(rank * 20, rank), count: rank, height: 4, width: 5, channels: 1 },
    topInputs: { data: rand(rank * k * 20, 7), count: rank * k, height: 4, width: 5, channels: 1 },
    topK: k,
    histograms: null,
    nClasses: 0,
    interpretation: withInterp ? interp(rank, k) : null,
  };
}

describe("latent gallery tile: maximized image and attribution overlay", () => {
  it("shows a maximized canvas next to each latent image, titled with its activation", () => {
    const el = document.createElement("div");
    renderLatentGallery(el, gallery(4), { factor: 1 }, {}, { tileSize: 60 });
    const max = el.querySelectorAll<HTMLCanvasElement>(".pl-tile canvas.pl-max");
    expect(max.length).toBe(4);
    expect([max[2].width, max[2].height]).toEqual([5, 4]);
    expect(max[2].title).toMatch(/maximizes factor 2 in relu \(1\.5 x the activation of its top input\)/);
    expect(max[2].getAttribute("role")).toBe("img");
    // the tile is widened for the pair
    expect((el.querySelector(".pl-gallery") as HTMLElement).style.getPropertyValue("--pl-tile-w")).toBe("136px");
  });

  it("toggles the overlay with a keyboard-reachable button", () => {
    const el = document.createElement("div");
    renderLatentGallery(el, gallery(3), { factor: 0 });
    const b = el.querySelector<HTMLButtonElement>("button.pl-interp-toggle")!;
    expect(b).not.toBeNull();
    expect(b.tagName).toBe("BUTTON");
    expect(b.getAttribute("aria-pressed")).toBe("false");
    expect(b.getAttribute("aria-label")).toMatch(/attribution heatmaps \(spatial\)/);
    b.click();
    expect(b.getAttribute("aria-pressed")).toBe("true");
    const tops = el.querySelectorAll<HTMLCanvasElement>("canvas.pl-top");
    expect(tops.length).toBe(3);
    tops.forEach((c) => expect(c.dataset.overlay).toBe("on"));
    b.click();
    tops.forEach((c) => expect(c.dataset.overlay).toBe("off"));
    // the export button is still there, beside the toggle
    expect(el.querySelector(".pl-head .pl-export")).not.toBeNull();
  });

  it("has no toggle without heatmaps, and nothing in compact mode or without the section", () => {
    const el = document.createElement("div");
    const g = gallery(2);
    g.interpretation = interp(2, 3, false);
    renderLatentGallery(el, g, { factor: 0 });
    expect(el.querySelector("button.pl-interp-toggle")).toBeNull();
    expect(el.querySelectorAll("canvas.pl-max").length).toBe(2);
    renderLatentGallery(el, gallery(2), { factor: 0 }, {}, { compact: true });
    expect(el.querySelectorAll("canvas.pl-max").length).toBe(0);
    expect(el.querySelector("button.pl-interp-toggle")).toBeNull();
    renderLatentGallery(el, gallery(2, 3, false), { factor: 0 });
    expect(el.querySelectorAll("canvas.pl-max, .pl-interp-caption, .pl-pair").length).toBe(0);
  });

  it("blends the heatmap in CMAP over the thumbnail, semi-transparent, and outlines the box", () => {
    const base = new Uint8ClampedArray(2 * 3 * 4).fill(100);
    const heat = new Float32Array([0, 1, 0.5, 0, 0, 0]);
    const out = overlayRGBA(base, heat, 0, 2, 3, [0, 2, 1, 1]);
    expect(Array.from(out.subarray(0, 4))).toEqual([100, 100, 100, 255]); // no evidence: untouched
    const a = OVERLAY_ALPHA;
    const top = 255 * 3; // CMAP holds RGB triplets
    expect(out[4]).toBe(Math.round((1 - a) * 100 + a * CMAP[top]));
    expect(out[6]).toBe(Math.round((1 - a) * 100 + a * CMAP[top + 2]));
    expect(Array.from(out.subarray(8, 11))).toEqual([255, 64, 64]); // the box pixel (0, 2)
    expect(Array.from(base.subarray(4, 8))).toEqual([100, 100, 100, 100]); // the input is not changed
  });
});
