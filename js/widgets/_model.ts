/** What the widget glue needs from an anywidget model (a real one, or the fake in the tests). */
export interface WidgetModel {
  get(name: string): any;
  set(name: string, value: unknown): void;
  save_changes(): void;
  on(event: string, callback: (...args: any[]) => void): void;
  off(event?: string | null, callback?: ((...args: any[]) => void) | null): void;
}

export interface RenderProps {
  model: WidgetModel;
  el: HTMLElement;
}

/** Listen to several traits; returns the function that stops listening. */
export function listen(model: WidgetModel, names: string[], cb: () => void): () => void {
  const evs = names.map((n) => `change:${n}`);
  evs.forEach((e) => model.on(e, cb));
  return () => evs.forEach((e) => model.off(e, cb));
}

/** Time a redraw and expose it on the element (data-redraw-ms) for tests and curious users. */
export function timed(el: HTMLElement, draw: () => void): void {
  const t0 = performance.now();
  draw();
  el.dataset.redrawMs = (performance.now() - t0).toFixed(2);
}
