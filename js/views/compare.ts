/** Compare several networks: RMSE curves and spectra in one chart each, galleries side by side. */
import { clear, colour, ensureStyles, h, lineChart, moveMarker, nearestIndex } from "./shared";
import { renderLatentGallery } from "./latent_gallery";
import { renderSpectrumPlot } from "./spectrum_plot";
import type { CompareData, RankCallbacks, RankState, ViewHandle } from "./types";

/** All ranks of all networks, increasing, without repeats. */
export function unionRanks(data: CompareData): number[] {
  const s = new Set<number>();
  for (const n of data.networks) for (const r of n.ranks) s.add(r);
  return [...s].sort((a, b) => a - b);
}

export function renderCompare(el: HTMLElement, data: CompareData, state: RankState, callbacks: RankCallbacks = {}): ViewHandle<RankState> {
  ensureStyles(el.ownerDocument);
  clear(el);
  const root = h("div", "pl-view pl-compare");
  root.appendChild(h("h4", "", `Compare ${data.networks.length} networks`));
  const ranks = unionRanks(data);

  const bar = h("div", "pl-slider");
  const input = h("input");
  input.type = "range";
  input.min = "0";
  input.max = String(Math.max(0, ranks.length - 1));
  input.step = "1";
  input.className = "pl-rank-slider";
  input.setAttribute("aria-label", "rank");
  const value = h("span", "pl-rank-value");
  bar.append(h("label", "", "rank"), input, value);
  root.appendChild(bar);

  const charts = h("div", "pl-row");
  const rm = lineChart(
    data.networks.map((n, i) => ({ name: n.name, x: n.ranks, y: n.rmse, points: true, color: colour(i) })),
    { title: "RMSE vs rank", xLabel: "rank", yLabel: "RMSE", xTicks: ranks, width: 360, height: 220 },
  );
  rm.svg.classList.add("pl-rmse-chart");
  charts.appendChild(rm.svg);
  root.appendChild(charts);
  if (data.spectra && data.spectra.series.length) {
    const sp = h("div");
    renderSpectrumPlot(sp, data.spectra);
    root.appendChild(sp);
  }
  const galleries = h("div", "pl-row pl-compare-galleries");
  root.appendChild(galleries);
  el.appendChild(root);

  let current = Number.NaN;
  const show = (rank: number) => {
    const i = ranks.length ? nearestIndex(ranks, rank) : 0;
    const r = ranks.length ? ranks[i] : rank;
    input.value = String(i);
    value.textContent = String(r);
    moveMarker(rm.marker, rm.geometry, ranks.length ? r : null);
    root.dataset.rank = String(r);
    if (r === current) return;
    current = r;
    clear(galleries);
    data.networks.forEach((n) => {
      const col = h("div", "pl-compare-network");
      col.dataset.network = n.name;
      const j = n.ranks.indexOf(r);
      const g = j >= 0 ? n.galleries[j] : undefined;
      if (!g) {
        col.appendChild(h("h4", "", n.name));
        col.appendChild(h("span", "pl-muted", `rank ${r} not swept`));
      } else {
        renderLatentGallery(col, { ...g, title: `${n.name} (rank ${r})` }, { factor: -1 }, {}, { compact: true });
      }
      galleries.appendChild(col);
    });
  };
  const onInput = () => {
    const r = ranks[Number(input.value)];
    if (r === undefined || r === current) return;
    show(r);
    callbacks.onRank?.(r);
  };
  input.addEventListener("input", onInput);
  show(state.rank);
  return {
    update(s: RankState) { show(s.rank); },
    destroy() { input.removeEventListener("input", onInput); clear(el); },
  };
}
