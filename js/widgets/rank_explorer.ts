/** anywidget glue: peeklens.widgets.RankExplorer (the errors come from the results' metadata). */
import { renderRankExplorer } from "../views/rank_explorer";
import type { RenderProps } from "./_model";
import { renderRankView } from "./_rank_view";
import { modelResults } from "./_source";

function render(props: RenderProps): Promise<() => void> {
  return renderRankView(
    props,
    async (model) => ({ ...modelResults(model).rankExplorerData(), title: model.get("title") || undefined }),
    renderRankExplorer,
    ["meta", "title"],
  );
}

export default { render };
