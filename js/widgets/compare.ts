/** anywidget glue: peeklens.widgets.Compare. */
import { renderCompare } from "../views/compare";
import { compareData } from "./_decode";
import type { RenderProps } from "./_model";
import { renderRankView } from "./_rank_view";

function render(props: RenderProps): () => void {
  return renderRankView(props, compareData, renderCompare, ["networks", "series", "image_shape"]);
}

export default { render };
