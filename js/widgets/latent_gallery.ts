/** anywidget glue: peeklens.widgets.LatentGallery (all ranks travel once; the rank picks one). */
import { renderLatentGallery } from "../views/latent_gallery";
import { clear, h } from "../views/shared";
import type { FactorState, GalleryData, ViewHandle } from "../views/types";
import { galleryFit } from "./_decode";
import { listen, timed, type RenderProps, type WidgetModel } from "./_model";

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

export function render({ model, el }: RenderProps): () => void {
  let cache = galleryCache(model);
  let handle: ViewHandle<FactorState> | null = null;
  let shownRank = Number.NaN;
  const factorFor = (rank: number) => {
    const f = Number(model.get("factor"));
    return f >= rank ? rank - 1 : f;
  };
  const draw = () => {
    const rank = Number(model.get("rank"));
    const data = cache.get(rank);
    handle?.destroy();
    handle = null;
    shownRank = rank;
    if (!data) {
      clear(el);
      el.appendChild(h("div", "pl-view pl-muted", `rank ${rank} is not in this sweep`));
      return;
    }
    handle = renderLatentGallery(el, data, { factor: factorFor(rank) }, {
      onFactor: (factor) => {
        model.set("factor", factor);
        model.save_changes();
      },
    });
  };
  timed(el, draw);
  const offData = listen(model, ["fits", "image_shape", "top_k", "n_classes", "class_names"], () => {
    cache = galleryCache(model);
    timed(el, draw);
  });
  const offRank = listen(model, ["rank"], () => {
    if (Number(model.get("rank")) !== shownRank) timed(el, draw);
  });
  const offFactor = listen(model, ["factor"], () => handle?.update({ factor: factorFor(shownRank) }));
  return () => {
    offData();
    offRank();
    offFactor();
    handle?.destroy();
  };
}

export default { render };
