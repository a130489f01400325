/**
 * What a factor means, for the latent gallery: the schema's `interpretation` section of a fit
 * (`pl.explain`, `peeklens.interpret.Explanation`) turned into pictures aligned with the gallery's
 * tiles (maximized images per factor) and thumbnails (attribution heatmaps, matched by sample index).
 */
import type { GalleryInterpretation, ImageStack } from "../views/types";
import { FileFormatError, type FitMeta, type InterpretationMeta, type NdArray, type Source } from "./schema";

/** The explained layers of a fit (in file order); empty for files without the section. */
export function interpretedLayers(fit: FitMeta): string[] {
  return (fit.interpretation ?? []).map((e) => e.layer);
}

function check(a: NdArray, dims: number, lead: number, what: string): void {
  if (a.shape.length !== dims || a.shape[0] !== lead) {
    throw new FileFormatError(
      `interpretation: ${what} has shape (${a.shape}), expected ${dims} dimensions, ${lead} rows`,
    );
  }
}

/**
 * The interpretation of `layer` (default: the first explained layer) at the gallery's layout, or
 * null when the fit has none (or not of that layer).
 *
 * @param topSamples the sample index of every thumbnail, factor-major (rank x topK), as the gallery
 *   shows them; each thumbnail gets the heatmap stored for the same sample of the same factor.
 */
export async function galleryInterpretation(
  source: Source,
  fit: FitMeta,
  topSamples: ArrayLike<number> | null,
  topK: number,
  layer?: string,
): Promise<GalleryInterpretation | null> {
  const entries = fit.interpretation ?? [];
  if (!entries.length) return null;
  const e: InterpretationMeta | undefined = layer === undefined ? entries[0] : entries.find((x) => x.layer === layer);
  if (!e) return null; // that layer was explained at other ranks only (the widget checks the name)
  const rank = Number(fit.rank);
  const get = (key: string | null) => (key ? source.getArray(key) : Promise.resolve(null));
  const [factors, maxi, mscores, ref, samples, heat, boxes] = await Promise.all([
    source.getArray(e.factors),
    get(e.maximized),
    get(e.maximized_scores),
    get(e.reference),
    get(e.samples),
    get(e.heatmaps),
    get(e.boxes),
  ]);
  const m = factors.shape[0] ?? 0;
  const rowOf = new Int32Array(rank).fill(-1);
  for (let i = 0; i < m; i++) {
    const f = Number(factors.data[i]);
    if (!(f >= 0 && f < rank))
      throw new FileFormatError(`${source.name}: interpretation of factor ${f} at rank ${rank}`);
    rowOf[f] = i;
  }
  const explained = Uint8Array.from(rowOf, (i) => (i >= 0 ? 1 : 0));

  let maximized: ImageStack | null = null;
  let nImages = 0;
  const relScore = new Float32Array(rank).fill(Number.NaN);
  if (maxi) {
    check(maxi, 5, m, "maximized");
    const [, n, H, W, C] = maxi.shape;
    nImages = n;
    const per = H * W * C;
    const data = new Float32Array(rank * n * per);
    for (let f = 0; f < rank; f++) {
      const i = rowOf[f];
      if (i < 0) continue;
      for (let p = 0; p < n * per; p++) data[f * n * per + p] = maxi.data[i * n * per + p] / 255;
      if (mscores && ref) relScore[f] = Number(mscores.data[i * n]) / Number(ref.data[i]);
    }
    maximized = { data, count: rank * n, height: H, width: W, channels: C };
  }

  let heatStack: ImageStack | null = null;
  let outBoxes: Int32Array | null = null;
  const k = Math.max(0, Math.floor(topK));
  const hasHeat = new Uint8Array(rank * k);
  if (heat && samples && topSamples && k > 0) {
    check(heat, 4, m, "heatmaps");
    check(samples, 2, m, "samples");
    const [, k2, H, W] = heat.shape;
    const hw = H * W;
    const data = new Float32Array(rank * k * hw);
    outBoxes = boxes ? new Int32Array(rank * k * 4) : null;
    for (let f = 0; f < rank; f++) {
      const i = rowOf[f];
      if (i < 0) continue;
      for (let j = 0; j < k; j++) {
        const s = topSamples[f * k + j];
        let at = -1;
        for (let t = 0; t < k2; t++) {
          if (Number(samples.data[i * k2 + t]) === s) {
            at = t;
            break;
          }
        }
        if (at < 0) continue; // a thumbnail the explanation did not attribute (a larger display top_k)
        const src = (i * k2 + at) * hw;
        const dst = (f * k + j) * hw;
        for (let p = 0; p < hw; p++) data[dst + p] = heat.data[src + p] / 255;
        hasHeat[f * k + j] = 1;
        if (outBoxes && boxes)
          for (let q = 0; q < 4; q++) outBoxes[(f * k + j) * 4 + q] = Number(boxes.data[(i * k2 + at) * 4 + q]);
      }
    }
    heatStack = { data, count: rank * k, height: H, width: W, channels: 1 };
  }
  return {
    layer: e.layer,
    layers: interpretedLayers(fit),
    method: e.method ?? null,
    maximized,
    nImages,
    explained,
    relScore,
    heat: heatStack,
    hasHeat,
    boxes: outBoxes,
    interrupted: Boolean(e.interrupted),
  };
}
