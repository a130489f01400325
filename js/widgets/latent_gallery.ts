/** anywidget glue: peeklens.widgets.LatentGallery (all ranks travel once; the rank picks one). */
import { renderLatentGallery } from "../views/latent_gallery";
import type { GalleryData } from "../views/types";
import { galleryFit } from "./_decode";
import { renderFactorView } from "./_factor_view";
import type { RenderProps, WidgetModel } from "./_model";

/** Decoded gallery data per rank, rebuilt only when the data traits change. */
export function galleryCache(model: WidgetModel): Map<number, GalleryData> {
  const shape = model.get("image_shape") ?? [1, 1, 1];
  const topK = Number(model.get("top_k") ?? 0);
  const nClasses = Number(model.get("n_classes") ?? 0);
  const names = (model.get("class_names") ?? []).map(String);
  const out = new Map<number, GalleryData>();
  for (const fit of model.get("fits") ?? []) out.set(Number(fit.rank), galleryFit(fit, shape, topK, nClasses, names));
  return out;
}

function render(props: RenderProps): () => void {
  return renderFactorView(props, galleryCache, renderLatentGallery, ["image_shape", "top_k", "n_classes", "class_names"]);
}

export default { render };
