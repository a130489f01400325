import { describe, expect, it } from "vitest";
import { topInputsAmong } from "../core/derive";
import { renderLatentGallery } from "../views/latent_gallery";
import type { GalleryData } from "../views/types";
import * as latentGallery from "../widgets/latent_gallery";
import { FakeModel, rand, settle, sweepPayload } from "./fake_model";

function gallery(rank: number, k: number): GalleryData {
  return {
    rank,
    latents: { data: rand(rank * 20, rank), count: rank, height: 4, width: 5, channels: 1 },
    topInputs: { data: rand(rank * k * 20, 7), count: rank * k, height: 4, width: 5, channels: 1 },
    topK: k,
    // factor r's top inputs are samples 10r .. 10r + k - 1
    topSamples: Int32Array.from({ length: rank * k }, (_, i) => 10 * Math.floor(i / k) + (i % k)),
    histograms: null,
    nClasses: 0,
  };
}

const ringed = (el: HTMLElement, factor: number) =>
  Array.from(el.querySelectorAll<HTMLElement>(`.pl-tile[data-factor="${factor}"] .pl-top-cell.pl-hit`)).map((c) =>
    Number(c.dataset.sample),
  );

describe("gallery marks (samples selected in the sample explorer)", () => {
  it("names the sample of every thumbnail, in the thumbnail's place", () => {
    const el = document.createElement("div");
    renderLatentGallery(el, gallery(3, 6), { factor: 0 });
    const cells = Array.from(el.querySelectorAll<HTMLElement>('.pl-tile[data-factor="2"] .pl-top-cell'));
    expect(cells.map((c) => Number(c.dataset.sample))).toEqual([20, 21, 22, 23, 24, 25]);
    // k = 6: three columns, two rows, laid over the one canvas
    expect([cells[4].style.left, cells[4].style.top, cells[4].style.height]).toEqual(["33.3333%", "50%", "50%"]);
    expect(el.querySelectorAll(".pl-hit").length).toBe(0);
  });
  it("rings the selected samples and counts them per tile, on update", () => {
    const el = document.createElement("div");
    const hnd = renderLatentGallery(el, gallery(3, 4), { factor: 0, highlighted: [1, 3, 99] });
    expect(ringed(el, 0)).toEqual([1, 3]);
    const tile0 = el.querySelector<HTMLElement>('.pl-tile[data-factor="0"]')!;
    expect(tile0.dataset.hits).toBe("2");
    expect(tile0.classList.contains("pl-has-hits")).toBe(true);
    expect(tile0.querySelector(".pl-hits")!.textContent).toBe("2 of 4 selected");
    hnd.update({ factor: 0, highlighted: [20, 21, 22, 10] });
    expect(ringed(el, 0)).toEqual([]);
    expect(ringed(el, 1)).toEqual([10]);
    expect(ringed(el, 2)).toEqual([20, 21, 22]);
    expect(tile0.classList.contains("pl-has-hits")).toBe(false);
    hnd.update({ factor: 1, highlighted: [] });
    expect(el.querySelectorAll(".pl-hit").length).toBe(0);
  });
  it("the widget follows the model's `highlighted` at every rank", async () => {
    const payload = sweepPayload([2, 5]);
    const model = new FakeModel({ ranks: [2, 5], rank: 2, factor: 0, hist_k: 5, highlighted: [], ...payload });
    const el = document.createElement("div");
    const cleanup = await latentGallery.default.render({ model, el });
    // the expected rings, computed from F here (the display section keeps every sample)
    const expected = async (rank: number, sel: number[]) => {
      const key = payload.meta.fits[String(rank)].F;
      const F = new Float32Array(payload.arrays[key].buffer.slice(0));
      const all = Int32Array.from({ length: 20 }, (_, i) => i);
      const top = topInputsAmong({ data: F, rows: 20, cols: rank }, all, 2);
      return Array.from({ length: rank }, (_, r) =>
        Array.from(top.subarray(2 * r, 2 * r + 2))
          .filter((s) => sel.includes(s))
          .sort((a, b) => a - b),
      );
    };
    const shown = (rank: number) => Array.from({ length: rank }, (_, r) => ringed(el, r).sort((a, b) => a - b));
    const evens = Array.from({ length: 10 }, (_, i) => 2 * i);
    model.set("highlighted", evens);
    await settle();
    const want2 = await expected(2, evens);
    expect(want2.flat().length).toBeGreaterThan(0); // the test rings something
    expect(shown(2)).toEqual(want2);
    expect(el.querySelectorAll(".pl-hit").length).toBe(want2.flat().length);
    model.set("rank", 5);
    await settle();
    expect(shown(5)).toEqual(await expected(5, evens));
    model.set("highlighted", []);
    await settle();
    expect(el.querySelectorAll(".pl-hit").length).toBe(0);
    cleanup();
    expect(model.listeners()).toBe(0);
  });
});
