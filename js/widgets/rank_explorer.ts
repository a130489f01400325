/** anywidget glue: peeklens.widgets.RankExplorer. */
import { renderRankExplorer } from "../views/rank_explorer";
import type { ViewHandle, RankState } from "../views/types";
import { explorerData } from "./_decode";
import { listen, timed, type RenderProps } from "./_model";

function render({ model, el }: RenderProps): () => void {
  let handle: ViewHandle<RankState> | null = null;
  const draw = () => {
    handle?.destroy();
    handle = renderRankExplorer(el, explorerData(model), { rank: Number(model.get("rank")) }, {
      onRank: (rank) => {
        model.set("rank", rank);
        model.save_changes();
      },
    });
  };
  draw();
  const offData = listen(model, ["ranks", "rmse", "block_names", "block_errors", "title"], draw);
  const offRank = listen(model, ["rank"], () => timed(el, () => handle?.update({ rank: Number(model.get("rank")) })));
  return () => {
    offData();
    offRank();
    handle?.destroy();
  };
}

export default { render };
