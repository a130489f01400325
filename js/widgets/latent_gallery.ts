/** anywidget glue: peeklens.widgets.LatentGallery (all ranks travel once, as results; the rank picks one). */
import { renderLatentGallery } from "../views/latent_gallery";
import { renderFactorView } from "./_factor_view";
import type { RenderProps } from "./_model";

function render(props: RenderProps): Promise<() => void> {
  return renderFactorView(
    props,
    (results, rank, model) =>
      results.galleryData(rank, {
        histK: Number(model.get("hist_k") ?? 50),
        interpretLayer: (model.get("interpret_layer") as string) || undefined, // pl.explain's layer
      }),
    renderLatentGallery,
    ["hist_k", "interpret_layer"],
    { traits: ["highlighted"], read: (model) => ({ highlighted: model.get("highlighted") ?? [] }) },
  );
}

export default { render };
