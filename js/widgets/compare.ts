/** anywidget glue: peeklens.widgets.Compare (each network's results: metadata and input-side loadings). */
import { qualityOf } from "../core/quality";
import { renderCompare } from "../views/compare";
import type { CompareData, GalleryData } from "../views/types";
import type { RenderProps, WidgetModel } from "./_model";
import { renderRankView } from "./_rank_view";
import { resultsOf } from "./_source";
import { spectrumData } from "./spectrum_plot";

export async function compareData(model: WidgetModel): Promise<CompareData> {
  const networks = [];
  for (const n of model.get("networks") ?? []) {
    const r = resultsOf(n.meta, n.arrays, String(n.name));
    const galleries: GalleryData[] = [];
    if (r.inputBlocks.length) {
      for (const k of r.ranks) {
        const g = await r.latentGallery(k);
        if (g) galleries.push(g);
      }
    }
    networks.push({
      name: String(n.name),
      ranks: r.ranks,
      rmse: r.rankExplorerData().rmse,
      galleries,
      quality: qualityOf(r.meta),
    });
  }
  const specs = model.get("spectra") ?? [];
  const spectra = specs.length
    ? await spectrumData(specs, model.get("layers") ?? null, 0, "Singular values (semi-log)")
    : null;
  const noise = model.get("noise");
  return { networks, spectra, noise: typeof noise === "number" ? noise : null };
}

function render(props: RenderProps): Promise<() => void> {
  return renderRankView(props, compareData, renderCompare, ["networks", "spectra", "layers", "noise"]);
}

export default { render };
