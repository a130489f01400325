/** anywidget glue: peeklens.widgets.LatentGallery (all ranks travel once; the rank picks one). */
import { renderLatentGallery } from "../views/latent_gallery";
import { h } from "../views/shared";
import type { FactorState, GalleryData } from "../views/types";
import { galleryFit } from "./_decode";
import { listen, timed, type RenderProps, type WidgetModel } from "./_model";
import { RankedViews } from "./_ranked";

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

function render({ model, el }: RenderProps): () => void {
  let cache = galleryCache(model);
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
    return renderLatentGallery(box, data, state, { onFactor });
  });
  const show = () => {
    const rank = Number(model.get("rank"));
    timed(el, () => views.show(rank, factorFor(rank)));
  };
  show();
  views.prerender([...cache.keys()], factorFor);
  const offData = listen(model, ["fits", "image_shape", "top_k", "n_classes", "class_names"], () => {
    cache = galleryCache(model);
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

export default { render };
