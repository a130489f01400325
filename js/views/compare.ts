/** Compare several networks: RMSE curves and spectra in one chart each, galleries side by side. */
import { chartFigure, viewExport } from "./export";
import { clear, colour, ensureStyles, h, lineChart, moveMarker, nearestIndex, rankSlider } from "./shared";
import { renderLatentGallery } from "./latent_gallery";
import { renderSpectrumPlot } from "./spectrum_plot";
import type { CompareData, RankCallbacks, RankState, ViewHandle } from "./types";

/** A network's name without the file extension (`mnist.peeklens` -> `mnist`). */
function stem(name: string): string {
  return name.replace(/\.peeklens$/i, "");
}

/**
 * One colour per network, by its position in `data.networks`, the same in every chart. A
 * spectrum series takes the colour of the network of the same name, or of the network whose name
 * its own starts with (`mnist-spectrum.peeklens` goes with `mnist.peeklens`); others get the next colours.
 */
export function networkColors(data: CompareData): Record<string, string> {
  const out: Record<string, string> = {};
  data.networks.forEach((n, i) => {
    out[n.name] = colour(i);
  });
  let k = data.networks.length;
  const byLength = [...data.networks].sort((a, b) => stem(b.name).length - stem(a.name).length);
  for (const s of data.spectra?.series ?? []) {
    if (s.network in out) continue;
    const own = byLength.find(
      (n) =>
        stem(s.network).startsWith(stem(n.name)) && /^($|[-_ .(])/.test(stem(s.network).slice(stem(n.name).length)),
    );
    out[s.network] = own ? out[own.name] : colour(k++);
  }
  return out;
}

/** All ranks of all networks, increasing, without repeats. */
export function unionRanks(data: CompareData): number[] {
  const s = new Set<number>();
  for (const n of data.networks) for (const r of n.ranks) s.add(r);
  return [...s].sort((a, b) => a - b);
}

export function renderCompare(
  el: HTMLElement,
  data: CompareData,
  state: RankState,
  callbacks: RankCallbacks = {},
): ViewHandle<RankState> {
  ensureStyles(el.ownerDocument);
  clear(el);
  const root = h("div", "pl-view pl-compare");
  const title = `Compare ${data.networks.length} networks`;
  const head = h("div", "pl-head");
  head.appendChild(h("h4", "", title));
  head.appendChild(viewExport(() => root, title));
  root.appendChild(head);
  const ranks = unionRanks(data);
  const colors = networkColors(data);

  const slider = rankSlider(ranks);
  const { bar, input } = slider;
  root.appendChild(bar);

  const charts = h("div", "pl-row");
  const rm = lineChart(
    data.networks.map((n) => ({ name: n.name, x: n.ranks, y: n.rmse, points: true, color: colors[n.name] })),
    { title: "RMSE vs rank", xLabel: "rank", yLabel: "RMSE", xTicks: ranks, width: 380, height: 230 },
  );
  rm.svg.classList.add("pl-rmse-chart");
  charts.appendChild(chartFigure(rm.svg, "RMSE vs rank, compared"));
  root.appendChild(charts);
  let spectrum: ViewHandle<Record<string, never>> | null = null;
  if (data.spectra && data.spectra.series.length) {
    const sp = h("div");
    spectrum = renderSpectrumPlot(sp, data.spectra, { colors });
    root.appendChild(sp);
  }
  const galleries = h("div", "pl-row pl-compare-galleries");
  root.appendChild(galleries);
  el.appendChild(root);

  let current = Number.NaN;
  const show = (rank: number) => {
    const i = ranks.length ? nearestIndex(ranks, rank) : 0;
    const r = ranks.length ? ranks[i] : rank;
    slider.setIndex(i);
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
      const sw = h("span", "pl-swatch");
      sw.style.background = colors[n.name];
      sw.dataset.color = colors[n.name];
      if (!g) {
        const hh = h("h4", "");
        hh.append(sw, n.name);
        col.appendChild(hh);
        col.appendChild(h("span", "pl-muted", `rank ${r} not swept`));
      } else {
        renderLatentGallery(col, { ...g, title: `${n.name} (rank ${r})` }, { factor: -1 }, {}, { compact: true });
        col.querySelector("h4")?.prepend(sw);
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
    update(s: RankState) {
      show(s.rank);
    },
    destroy() {
      input.removeEventListener("input", onInput);
      slider.dispose();
      spectrum?.destroy();
      clear(el);
    },
  };
}
