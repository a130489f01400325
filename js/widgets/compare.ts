/** anywidget glue: peeklens.widgets.Compare. */
import { renderCompare } from "../views/compare";
import type { RankState, ViewHandle } from "../views/types";
import { compareData } from "./_decode";
import { listen, timed, type RenderProps } from "./_model";

function render({ model, el }: RenderProps): () => void {
  let handle: ViewHandle<RankState> | null = null;
  const draw = () => {
    handle?.destroy();
    handle = renderCompare(el, compareData(model), { rank: Number(model.get("rank")) }, {
      onRank: (rank) => {
        model.set("rank", rank);
        model.save_changes();
      },
    });
  };
  draw();
  const offData = listen(model, ["networks", "series", "image_shape"], draw);
  const offRank = listen(model, ["rank"], () => timed(el, () => handle?.update({ rank: Number(model.get("rank")) })));
  return () => {
    offData();
    offRank();
    handle?.destroy();
  };
}

export default { render };
