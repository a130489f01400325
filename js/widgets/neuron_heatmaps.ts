/** anywidget glue: peeklens.widgets.NeuronHeatmaps. */
import { renderNeuronHeatmaps } from "../views/neuron_heatmaps";
import { h } from "../views/shared";
import type { FactorState, HeatmapData } from "../views/types";
import { heatmapFit } from "./_decode";
import { listen, timed, type RenderProps, type WidgetModel } from "./_model";
import { RankedViews } from "./_ranked";

export function heatmapCache(model: WidgetModel): Map<number, HeatmapData> {
  const names = (model.get("layer_names") ?? []).map(String);
  const shapes = model.get("layer_shapes") ?? [];
  const threshold = Number(model.get("threshold") ?? 0.01);
  const out = new Map<number, HeatmapData>();
  for (const fit of model.get("fits") ?? []) out.set(Number(fit.rank), heatmapFit(fit, names, shapes, threshold));
  return out;
}

function render({ model, el }: RenderProps): () => void {
  let cache = heatmapCache(model);
  const factorFor = (rank: number): FactorState => {
    const f = Number(model.get("factor"));
    return { factor: f >= rank ? rank - 1 : f };
  };
  const onFactor = (factor: number) => {
    model.set("factor", factor);
    model.save_changes();
  };
  const views = new RankedViews<FactorState>(el, (box, rank, state) => {
    const data = cache.get(rank);
    if (!data) {
      box.appendChild(h("div", "pl-view pl-muted", `rank ${rank} is not in this sweep`));
      return null;
    }
    return renderNeuronHeatmaps(box, data, state, { onFactor });
  });
  const show = () => {
    const rank = Number(model.get("rank"));
    timed(el, () => views.show(rank, factorFor(rank)));
  };
  show();
  views.prerender([...cache.keys()], factorFor);
  const offData = listen(model, ["fits", "layer_names", "layer_shapes", "threshold"], () => {
    cache = heatmapCache(model);
    views.reset();
    show();
    views.prerender([...cache.keys()], factorFor);
  });
  const offState = listen(model, ["rank", "factor"], show);
  return () => {
    offData();
    offState();
    views.destroy();
  };
}

export default { render };
