/**
 * The glue shared by the views driven by the rank alone (rank explorer, compare): redraw when
 * the data traits change, update in place when the rank changes, and write slider moves back to
 * the model's `rank`.
 */
import type { RankCallbacks, RankState, ViewHandle } from "../views/types";
import { listen, timed, type RenderProps, type WidgetModel } from "./_model";

export function renderRankView<D>(
  { model, el }: RenderProps,
  decode: (model: WidgetModel) => D,
  draw: (el: HTMLElement, data: D, state: RankState, callbacks: RankCallbacks) => ViewHandle<RankState>,
  dataTraits: string[],
): () => void {
  let handle: ViewHandle<RankState> | null = null;
  const redraw = () => {
    handle?.destroy();
    handle = draw(el, decode(model), { rank: Number(model.get("rank")) }, {
      onRank: (rank) => {
        model.set("rank", rank);
        model.save_changes();
      },
    });
  };
  redraw();
  const offData = listen(model, dataTraits, redraw);
  const offRank = listen(model, ["rank"], () => timed(el, () => handle?.update({ rank: Number(model.get("rank")) })));
  return () => {
    offData();
    offRank();
    handle?.destroy();
  };
}
