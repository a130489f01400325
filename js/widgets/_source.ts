/**
 * Widget traits as the results model of js/core: the schema `meta` and the `arrays` the widget was
 * sent (binary buffers) become a TraitSource; everything else (derivations, drawing) is shared with
 * the JupyterLab document and the offline report.
 */
import { Results, TraitSource } from "../core/index";
import type { WidgetModel } from "./_model";

/** The results of a `{meta, arrays}` pair (a model's traits, or one entry of a list trait). */
export function resultsOf(meta: unknown, arrays: unknown, name = "widget"): Results {
  return new Results(new TraitSource(meta as never, (arrays ?? {}) as Record<string, unknown>, name));
}

/** The results a widget model carries. */
export function modelResults(model: WidgetModel): Results {
  return resultsOf(model.get("meta"), model.get("arrays"));
}

/** Show an error where the view would be (a payload that cannot be read). */
export function showError(el: HTMLElement, err: unknown): void {
  const box = el.ownerDocument.createElement("pre");
  box.className = "pl-view pl-error";
  box.textContent = `peeklens: ${(err as Error)?.message ?? err}`;
  el.replaceChildren(box);
}
