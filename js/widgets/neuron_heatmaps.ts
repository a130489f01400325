/** anywidget glue: peeklens.widgets.NeuronHeatmaps. */
import { renderNeuronHeatmaps } from "../views/neuron_heatmaps";
import type { HeatmapData } from "../views/types";
import { heatmapFit } from "./_decode";
import { renderFactorView } from "./_factor_view";
import type { RenderProps, WidgetModel } from "./_model";

export function heatmapCache(model: WidgetModel): Map<number, HeatmapData> {
  const names = (model.get("layer_names") ?? []).map(String);
  const shapes = model.get("layer_shapes") ?? [];
  const threshold = Number(model.get("threshold") ?? 0.01);
  const out = new Map<number, HeatmapData>();
  for (const fit of model.get("fits") ?? []) out.set(Number(fit.rank), heatmapFit(fit, names, shapes, threshold));
  return out;
}

function render(props: RenderProps): () => void {
  return renderFactorView(props, heatmapCache, renderNeuronHeatmaps, ["layer_names", "layer_shapes", "threshold"]);
}

export default { render };
