/** anywidget glue: peeklens.widgets.NeuronHeatmaps. */
import { renderNeuronHeatmaps } from "../views/neuron_heatmaps";
import { renderFactorView } from "./_factor_view";
import type { RenderProps } from "./_model";

function render(props: RenderProps): Promise<() => void> {
  return renderFactorView(
    props,
    (results, rank, model) =>
      results.heatmapData(rank, {
        layers: (model.get("layer_names") ?? []).map(String),
        threshold: Number(model.get("threshold") ?? 0.01),
      }),
    renderNeuronHeatmaps,
    ["layer_names", "threshold"],
  );
}

export default { render };
