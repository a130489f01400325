/** Turn widget traits (as synced by peeklens.widgets) into the views' plain data. */
import type { CompareData, GalleryData, HeatmapData, RankExplorerData, SpectrumData } from "../views/types";
import { f32, i32, type WidgetModel } from "./_model";

export function explorerData(model: WidgetModel): RankExplorerData {
  return {
    ranks: (model.get("ranks") ?? []).map(Number),
    rmse: f32(model.get("rmse")),
    blockNames: (model.get("block_names") ?? []).map(String),
    blockErrors: f32(model.get("block_errors")),
    title: model.get("title") || undefined,
  };
}

/** One entry of a `fits` list trait of the gallery widget. */
export function galleryFit(fit: any, imageShape: number[], topK: number, nClasses: number, classNames: string[]): GalleryData {
  const [height, width, channels] = imageShape.map(Number);
  const rank = Number(fit.rank);
  const latents = f32(fit.latents);
  const top = fit.top == null ? null : f32(fit.top);
  return {
    rank,
    latents: { data: latents, count: rank, height, width, channels },
    topInputs: top && top.length ? { data: top, count: top.length / Math.max(1, height * width * channels), height, width, channels } : null,
    topK: top && top.length ? topK : 0,
    histograms: i32(fit.hist),
    nClasses,
    classNames,
    strength: fit.strength == null ? null : f32(fit.strength),
  };
}

export function heatmapFit(fit: any, layerNames: string[], layerShapes: number[][], threshold: number): HeatmapData {
  const rank = Number(fit.rank);
  const unused = fit.unused == null ? null : f32(fit.unused);
  return {
    rank,
    threshold,
    layers: layerNames.map((name, j) => ({
      name: String(name),
      shape: (layerShapes[j] ?? []).map(Number),
      loadings: f32(fit.loadings[j]),
      unusedShare: unused ? unused[j] : undefined,
    })),
  };
}

export function spectrumData(series: any[], title?: string): SpectrumData {
  return {
    title,
    series: (series ?? []).map((s) => ({ network: String(s.network), layer: String(s.layer), values: f32(s.values) })),
  };
}

export function compareData(model: WidgetModel): CompareData {
  const shape = (model.get("image_shape") ?? [1, 1, 1]).map(Number);
  const nets = (model.get("networks") ?? []).map((n: any) => ({
    name: String(n.name),
    ranks: (n.ranks ?? []).map(Number),
    rmse: f32(n.rmse),
    galleries: (n.latents ?? []).map((lat: any, j: number) =>
      galleryFit({ rank: n.ranks[j], latents: lat }, n.image_shape ?? shape, 0, 0, [])),
  }));
  const series = model.get("series") ?? [];
  return { networks: nets, spectra: series.length ? spectrumData(series, "Singular values (semi-log)") : null };
}
