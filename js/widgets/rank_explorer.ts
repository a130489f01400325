/** anywidget glue: peeklens.widgets.RankExplorer. */
import { renderRankExplorer } from "../views/rank_explorer";
import { explorerData } from "./_decode";
import type { RenderProps } from "./_model";
import { renderRankView } from "./_rank_view";

function render(props: RenderProps): () => void {
  return renderRankView(props, explorerData, renderRankExplorer, ["ranks", "rmse", "block_names", "block_errors", "title"]);
}

export default { render };
