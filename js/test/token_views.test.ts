import { describe, expect, it } from "vitest";
import { topInputsAmong } from "../core/derive";
import { markGallery } from "../views/gallery_marks";
import { splitFocus } from "../views/gallery_tokens";
import { renderLatentGallery } from "../views/latent_gallery";
import type { GalleryData } from "../views/types";
import { resultsOf } from "../widgets/_source";
import * as latentGallery from "../widgets/latent_gallery";
import { FakeModel, rand, settle, sweepPayload } from "./fake_model";

const textOf = (i: number) => `w${i - 1} <b>x</b> [t${i}] w${i + 1}`;

/** A token capture's payload: no input block, the display section keeps every sample's text. */
function tokenPayload(ranks: number[], n = 20, topK = 3) {
  const { meta, arrays } = sweepPayload(ranks, n, topK);
  for (const f of Object.values(meta.fits) as any[]) {
    f.names = f.names.slice(1);
    f.blocks = f.blocks.slice(1);
    f.W = f.W.slice(1);
    f.errors = f.errors.slice(1);
  }
  meta.display.images = [];
  meta.display.value_range = null;
  meta.display.text = Array.from({ length: n }, (_, i) => textOf(i));
  return { meta, arrays };
}

/** A ViT capture's payload: no input block, each sample's 6x6 patch crop (value = sample / 100), box and cell. */
function patchPayload(ranks: number[], n = 20, topK = 3) {
  const { meta, arrays } = tokenPayload(ranks, n, topK);
  delete meta.display.text;
  const put = (key: string, a: Float32Array | BigInt64Array, shape: number[]) => {
    arrays[key] = new DataView(a.buffer);
    meta.shapes[key] = shape;
    meta.dtypes[key] = a instanceof Float32Array ? "<f4" : "<i8";
    return key;
  };
  const crops = new Float32Array(n * 36).map((_, i) => Math.floor(i / 36) / 100);
  const boxes = BigInt64Array.from({ length: n * 4 }, (_, i) =>
    Math.floor(i / 4) === 0 ? -1n : [2n, 2n, 2n, 2n][i % 4],
  );
  const cells = BigInt64Array.from({ length: n * 2 }, (_, i) =>
    BigInt(Math.floor(i / 2) === 0 ? -1 : (Math.floor(i / 2) + (i % 2)) % 3),
  );
  meta.display.patches = {
    images: put("display.patches.images", crops, [n, 6, 6, 1]),
    boxes: put("display.patches.boxes", boxes, [n, 4]),
    cells: put("display.patches.cells", cells, [n, 2]),
  };
  return { meta, arrays };
}

function tokenGallery(rank: number, k: number): GalleryData {
  return {
    rank,
    latents: { data: new Float32Array(0), count: 0, height: 1, width: 1, channels: 1 },
    topInputs: null,
    topK: k,
    topSamples: Int32Array.from({ length: rank * k }, (_, i) => 100 + i),
    topTexts: Array.from({ length: rank * k }, (_, i) => textOf(100 + i)),
    histograms: null,
    nClasses: 0,
    strength: rand(rank, 3),
  };
}

describe("token samples in the gallery", () => {
  it("splits a sample's text around its bracketed token", () => {
    expect(splitFocus("the [cat] sat")).toEqual(["the ", "cat", " sat"]);
    expect(splitFocus("[a] b")).toEqual(["", "a", " b"]);
    expect(splitFocus("no brackets")).toEqual(["", "no brackets", ""]);
  });
  it("shows each factor's top tokens as text (never markup), with the sample of each", () => {
    const el = document.createElement("div");
    const hnd = renderLatentGallery(el, tokenGallery(2, 3), { factor: 0 });
    expect(el.querySelectorAll("canvas.pl-latent").length).toBe(0); // no input block: no latent image
    const items = Array.from(el.querySelectorAll<HTMLElement>('.pl-tile[data-factor="1"] .pl-top-text li'));
    expect(items.map((li) => li.dataset.sample)).toEqual(["103", "104", "105"]);
    expect(items[0].textContent).toBe("w102 <b>x</b> t103 w104");
    expect(items[0].querySelector(".pl-token-focus")!.textContent).toBe("t103");
    expect(el.querySelector("b")).toBeNull(); // text, not HTML
    expect(el.textContent).toContain("top tokens");
    // the sample explorer's selection rings token items like thumbnails
    hnd.update({ factor: 0, highlighted: [104, 100] });
    expect(
      Array.from(el.querySelectorAll<HTMLElement>(".pl-token-item.pl-hit")).map((li) => li.dataset.sample),
    ).toEqual(["100", "104"]);
    expect(el.querySelector<HTMLElement>('.pl-tile[data-factor="1"]')!.dataset.hits).toBe("1");
    expect(markGallery(el, [])).toBe(0);
  });
  it("derives the top tokens of every rank from the payload (no input block) in the order of F", async () => {
    const { meta, arrays } = tokenPayload([2, 4]);
    const results = resultsOf(meta, arrays);
    for (const rank of [2, 4]) {
      const g = (await results.galleryData(rank))!;
      expect(g).not.toBeNull();
      const F = new Float32Array(arrays[meta.fits[String(rank)].F].buffer.slice(0));
      const all = Int32Array.from({ length: 20 }, (_, i) => i);
      const top = topInputsAmong({ data: F, rows: 20, cols: rank }, all, 3);
      expect(Array.from(g.topSamples!)).toEqual(Array.from(top));
      expect(g.topTexts).toEqual(Array.from(top, (s) => textOf(s)));
      expect(g.latents.count).toBe(0);
      expect(g.histograms!.length).toBe(rank * 3); // labels 0..2 counted as before
    }
  });
  it("shows image-patch samples as their crops, aligned with the top samples of F", async () => {
    const { meta, arrays } = patchPayload([3]);
    const g = (await resultsOf(meta, arrays).galleryData(3))!;
    expect(g.topTexts).toBeNull();
    const p = g.topPatches!;
    expect([p.images.count, p.images.height, p.images.channels]).toEqual([9, 6, 1]);
    Array.from(g.topSamples!).forEach((s, i) => {
      expect(p.images.data[i * 36]).toBeCloseTo(s / 100, 6); // the crop of that sample
      expect(Array.from(p.boxes.subarray(4 * i, 4 * i + 4))).toEqual(s === 0 ? [-1, -1, -1, -1] : [2, 2, 2, 2]);
    });
    const el = document.createElement("div");
    renderLatentGallery(el, g, { factor: 0, highlighted: [g.topSamples![0]] });
    const canvases = Array.from(el.querySelectorAll<HTMLCanvasElement>(".pl-tile canvas.pl-patch"));
    expect(canvases.map((c) => Number(c.dataset.sample))).toEqual(Array.from(g.topSamples!));
    expect([canvases[0].width, canvases[0].height]).toEqual([6, 6]);
    expect(canvases[0].classList.contains("pl-hit")).toBe(true);
    expect(el.textContent).toContain("top image patches");
  });
  it("the lab document and the report know a token payload has a gallery", () => {
    expect(resultsOf(...(Object.values(tokenPayload([2])) as [unknown, unknown])).hasGallery).toBe(true);
    expect(resultsOf(...(Object.values(patchPayload([2])) as [unknown, unknown])).hasGallery).toBe(true);
    const bare = tokenPayload([2]);
    delete bare.meta.display.text; // token samples without text or patches: nothing to show
    expect(resultsOf(bare.meta, bare.arrays).hasGallery).toBe(false);
    const images = sweepPayload([2]);
    expect(resultsOf(images.meta, images.arrays).hasGallery).toBe(true);
  });
  it("the gallery widget draws a token payload and follows the rank", async () => {
    const model = new FakeModel({
      ranks: [2, 4],
      rank: 2,
      factor: 0,
      hist_k: 5,
      highlighted: [],
      ...tokenPayload([2, 4]),
    });
    const el = document.createElement("div");
    const cleanup = await latentGallery.default.render({ model, el });
    expect(el.querySelectorAll(".pl-tile").length).toBe(2);
    expect(el.querySelectorAll(".pl-top-text li").length).toBe(6);
    model.set("rank", 4);
    await settle();
    expect(el.querySelectorAll(".pl-top-text li").length).toBe(12);
    cleanup();
  });
});
