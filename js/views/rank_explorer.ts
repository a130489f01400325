/** Rank explorer: a slider over the swept ranks, RMSE vs rank and per-block relative error. */
import { clear, colour, ensureStyles, h, lineChart, moveMarker, nearestIndex, fmt } from "./shared";
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

  const bar = h("div", "pl-slider");
  const lab = h("label", "", "rank");
  const input = h("input");
  input.type = "range";
  input.min = "0";
  input.max = String(Math.max(0, n - 1));
  input.step = "1";
  input.className = "pl-rank-slider";
  input.setAttribute("aria-label", "rank");
  const value = h("span", "pl-rank-value");
  const rmseOut = h("span", "pl-muted pl-rank-rmse");
  bar.append(lab, input, value, rmseOut);
  root.appendChild(bar);

  const row = h("div", "pl-row");
  const x = data.ranks;
  const rmse = lineChart([{ name: "RMSE", x, y: data.rmse, points: true, color: colour(0) }], {
    title: "RMSE vs rank", xLabel: "rank", yLabel: "RMSE", xTicks: x, width: 340, height: 210,
  });
  rmse.svg.classList.add("pl-rmse-chart");
  const nb = data.blockNames.length;
  const blockSeries = data.blockNames.map((name, b) => ({
    name, x, y: data.blockErrors.subarray(b * n, (b + 1) * n), points: true, color: colour(b + 1),
  }));
  const blocks = lineChart(blockSeries, {
    title: "relative error per block", xLabel: "rank", yLabel: "‖X−WFᵀ‖/‖X‖", xTicks: x, width: 360, height: 210,
  });
  blocks.svg.classList.add("pl-block-chart");
  row.append(rmse.svg);
  if (nb > 0) row.append(blocks.svg);
  root.appendChild(row);
  el.appendChild(root);

  let current = state.rank;
  const show = (rank: number) => {
    const i = n ? nearestIndex(x, rank) : 0;
    current = n ? x[i] : rank;
    input.value = String(i);
    value.textContent = String(current);
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
      clear(el);
    },
  };
}
