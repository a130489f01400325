/**
 * The glue shared by the views that show one rank with a selected factor (gallery, heatmaps):
 * per-rank data decoded once, one drawn view per rank (RankedViews), the factor kept below the
 * rank, and tile/row clicks written back to the model's `factor`.
 */
import { h } from "../views/shared";
import type { FactorState, ViewHandle } from "../views/types";
import { listen, timed, type RenderProps, type WidgetModel } from "./_model";
import { RankedViews } from "./_ranked";

type Draw<D> = (
  box: HTMLElement,
  data: D,
  state: FactorState,
  callbacks: { onFactor: (factor: number) => void },
) => ViewHandle<FactorState>;

export function renderFactorView<D>(
  { model, el }: RenderProps,
  decode: (model: WidgetModel) => Map<number, D>,
  draw: Draw<D>,
  dataTraits: string[],
): () => void {
  let cache = decode(model);
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
    return draw(box, data, state, { onFactor });
  });
  const show = () => {
    const rank = Number(model.get("rank"));
    timed(el, () => views.show(rank, factorFor(rank)));
  };
  show();
  views.prerender([...cache.keys()], factorFor);
  const offData = listen(model, ["fits", ...dataTraits], () => {
    cache = decode(model);
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
