/**
 * The glue shared by the views driven by the rank alone (rank explorer, compare): redraw when
 * the data traits change, update in place when the rank changes, and write slider moves back to
 * the model's `rank`.
 */
import type { RankCallbacks, RankState, ViewHandle } from "../views/types";
import { listen, type RenderProps, timed, type WidgetModel } from "./_model";
import { showError } from "./_source";

export async function renderRankView<D>(
  { model, el }: RenderProps,
  decode: (model: WidgetModel) => Promise<D>,
  draw: (el: HTMLElement, data: D, state: RankState, callbacks: RankCallbacks) => ViewHandle<RankState>,
  dataTraits: string[],
): Promise<() => void> {
  let handle: ViewHandle<RankState> | null = null;
  const redraw = async () => {
    try {
      const data = await decode(model);
      handle?.destroy();
      handle = draw(
        el,
        data,
        { rank: Number(model.get("rank")) },
        {
          onRank: (rank) => {
            model.set("rank", rank);
            model.save_changes();
          },
        },
      );
    } catch (e) {
      showError(el, e);
    }
  };
  await redraw();
  const offData = listen(model, dataTraits, () => void redraw());
  const offRank = listen(model, ["rank"], () => timed(el, () => handle?.update({ rank: Number(model.get("rank")) })));
  return () => {
    offData();
    offRank();
    handle?.destroy();
  };
}
