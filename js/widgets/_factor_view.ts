/**
 * The glue shared by the views that show one rank with a selected factor (gallery, heatmaps):
 * per-rank data derived once from the synced results, one drawn view per rank (RankedViews), the
 * factor kept below the rank, and tile/row clicks written back to the model's `factor`.
 */
import type { Results } from "../core/index";
import { h } from "../views/shared";
import type { FactorState, ViewHandle } from "../views/types";
import { listen, type RenderProps, timed, type WidgetModel } from "./_model";
import { RankedViews } from "./_ranked";
import { modelResults, showError } from "./_source";

const idle = (): Promise<void> =>
  new Promise((resolve) => {
    const ric = (globalThis as any).requestIdleCallback;
    if (typeof ric === "function") ric(() => resolve(), { timeout: 500 });
    else setTimeout(resolve, 30);
  });

type Draw<D> = (
  box: HTMLElement,
  data: D,
  state: FactorState,
  callbacks: { onFactor: (factor: number) => void },
) => ViewHandle<FactorState>;

/** Derive the data of one rank from the results (async: a source reads arrays on demand). */
export type Derive<D> = (results: Results, rank: number, model: WidgetModel) => Promise<D | null>;

export async function renderFactorView<D>(
  { model, el }: RenderProps,
  derive: Derive<D>,
  draw: Draw<D>,
  dataTraits: string[],
  /** More view state read from the model (e.g. the gallery's `highlighted`), redrawn in place when it changes. */
  extraState: { traits: string[]; read: (model: WidgetModel) => Record<string, unknown> } = {
    traits: [],
    read: () => ({}),
  },
): Promise<() => void> {
  let results: Results;
  let cache = new Map<number, D | null>();
  let generation = 0;
  const factorFor = (rank: number): FactorState => {
    const f = Number(model.get("factor"));
    return { ...extraState.read(model), factor: f >= rank ? rank - 1 : f };
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
    return draw(box, data, state, { onFactor });
  });
  const ensure = async (rank: number): Promise<void> => {
    if (cache.has(rank)) return;
    const gen = generation;
    const d = results.ranks.includes(rank) ? await derive(results, rank, model) : null;
    if (gen === generation) cache.set(rank, d);
  };
  const show = async () => {
    const rank = Number(model.get("rank"));
    if (!cache.has(rank)) await ensure(rank);
    // moved on meanwhile, or the data changed while deriving (that reload shows the rank itself)
    if (Number(model.get("rank")) !== rank || !cache.has(rank)) return;
    timed(el, () => views.show(rank, factorFor(rank)));
  };
  /** Derive and draw the other ranks while the browser is idle. */
  const prerender = async () => {
    const gen = generation;
    for (const r of results.ranks) {
      if (cache.has(r)) continue;
      await idle(); // one rank per idle slot: never in the way of the first paint or a slider move
      if (gen !== generation) return;
      await ensure(r);
    }
    views.prerender(results.ranks, factorFor);
  };
  const load = async () => {
    generation++;
    cache = new Map();
    views.reset();
    try {
      results = modelResults(model);
      await show();
      void prerender().catch((e) => console.warn("peeklens:", e));
    } catch (e) {
      showError(el, e);
    }
  };
  await load();
  const offData = listen(model, ["meta", "arrays", ...dataTraits], () => void load());
  const offState = listen(
    model,
    ["rank", "factor", ...extraState.traits],
    () => void show().catch((e) => showError(el, e)),
  );
  return () => {
    offData();
    offState();
    views.destroy();
  };
}
