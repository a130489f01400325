/** anywidget glue: peeklens.widgets.NeuronHeatmaps. */
import { renderNeuronHeatmaps } from "../views/neuron_heatmaps";
import { clear, h } from "../views/shared";
import type { FactorState, HeatmapData, ViewHandle } from "../views/types";
import { heatmapFit } from "./_decode";
import { listen, timed, type RenderProps, type WidgetModel } from "./_model";

export function heatmapCache(model: WidgetModel): Map<number, HeatmapData> {
  const names = (model.get("layer_names") ?? []).map(String);
  const shapes = model.get("layer_shapes") ?? [];
  const threshold = Number(model.get("threshold") ?? 0.01);
  const out = new Map<number, HeatmapData>();
  for (const fit of model.get("fits") ?? []) out.set(Number(fit.rank), heatmapFit(fit, names, shapes, threshold));
  return out;
}

export function render({ model, el }: RenderProps): () => void {
  let cache = heatmapCache(model);
  let handle: ViewHandle<FactorState> | null = null;
  let shownRank = Number.NaN;
  const factorFor = (rank: number) => {
    const f = Number(model.get("factor"));
    return f >= rank ? rank - 1 : f;
  };
  const draw = () => {
    const rank = Number(model.get("rank"));
    const data = cache.get(rank);
    handle?.destroy();
    handle = null;
    shownRank = rank;
    if (!data) {
      clear(el);
      el.appendChild(h("div", "pl-view pl-muted", `rank ${rank} is not in this sweep`));
      return;
    }
    handle = renderNeuronHeatmaps(el, data, { factor: factorFor(rank) }, {
      onFactor: (factor) => {
        model.set("factor", factor);
        model.save_changes();
      },
    });
  };
  timed(el, draw);
  const offData = listen(model, ["fits", "layer_names", "layer_shapes", "threshold"], () => {
    cache = heatmapCache(model);
    timed(el, draw);
  });
  const offRank = listen(model, ["rank"], () => {
    if (Number(model.get("rank")) !== shownRank) timed(el, draw);
  });
  const offFactor = listen(model, ["factor"], () => timed(el, () => handle?.update({ factor: factorFor(shownRank) })));
  return () => {
    offData();
    offRank();
    offFactor();
    handle?.destroy();
  };
}

export default { render };
