/** Rank explorer: a slider over the swept ranks, RMSE vs rank and per-block relative error. */
import { chartFigure } from "./export";
import {
  caption,
  clear,
  colour,
  displayName,
  ensureStyles,
  GLOSSARY,
  h,
  lineChart,
  moveMarker,
  nearestIndex,
  fmt,
  rankSlider,
} from "./shared";
import type { RankCallbacks, RankExplorerData, RankState, ViewHandle } from "./types";

/**
 * Draw the rank explorer into `el`.
 *
 * The slider steps through `data.ranks` (which need not be evenly spaced); moving it calls
 * `callbacks.onRank(rank)`; `handle.update({rank})` moves the slider and the markers without redrawing.
 */
export function renderRankExplorer(
  el: HTMLElement,
  data: RankExplorerData,
  state: RankState,
  callbacks: RankCallbacks = {},
): ViewHandle<RankState> {
  ensureStyles(el.ownerDocument);
  clear(el);
  const root = h("div", "pl-view pl-rank-explorer");
  if (data.title) root.appendChild(h("h4", "", data.title));
  const n = data.ranks.length;

  const slider = rankSlider(data.ranks);
  const { bar, input } = slider;
  const rmseOut = h("span", "pl-muted pl-rank-rmse");
  bar.append(rmseOut);
  root.appendChild(bar);

  const row = h("div", "pl-row");
  const x = data.ranks;
  const rmse = lineChart([{ name: "RMSE", x, y: data.rmse, points: true, color: colour(0) }], {
    title: "RMSE vs rank",
    xLabel: "rank",
    yLabel: "RMSE",
    xTicks: x,
    width: 360,
    height: 230,
  });
  rmse.svg.classList.add("pl-rmse-chart");
  const nb = data.blockNames.length;
  const blockSeries = data.blockNames.map((name, b) => ({
    name: displayName(name),
    x,
    y: data.blockErrors.subarray(b * n, (b + 1) * n),
    points: true,
    color: colour(b + 1),
  }));
  const blocks = lineChart(blockSeries, {
    title: "relative error per block",
    xLabel: "rank",
    yLabel: "‖X_b − W_b Fᵀ‖ / ‖X_b‖",
    xTicks: x,
    width: 400,
    height: 230,
  });
  blocks.svg.classList.add("pl-block-chart");
  row.append(chartFigure(rmse.svg, "RMSE vs rank"));
  if (nb > 0) row.append(chartFigure(blocks.svg, "relative error per block"));
  root.appendChild(row);
  if (nb > 0) root.appendChild(caption(GLOSSARY.blockError));
  el.appendChild(root);

  let current = state.rank;
  const show = (rank: number) => {
    const i = n ? nearestIndex(x, rank) : 0;
    current = n ? x[i] : rank;
    slider.setIndex(i);
    rmseOut.textContent = n ? `RMSE ${fmt(data.rmse[i], 4)}` : "no ranks";
    moveMarker(rmse.marker, rmse.geometry, n ? current : null);
    moveMarker(blocks.marker, blocks.geometry, n ? current : null);
    root.dataset.rank = String(current);
  };
  const onInput = () => {
    const r = x[Number(input.value)];
    if (r === undefined || r === current) return;
    show(r);
    callbacks.onRank?.(r);
  };
  input.addEventListener("input", onInput);
  input.addEventListener("change", onInput);
  show(state.rank);

  return {
    update(s: RankState) {
      show(s.rank);
    },
    destroy() {
      input.removeEventListener("input", onInput);
      input.removeEventListener("change", onInput);
      slider.dispose();
      clear(el);
    },
  };
}
