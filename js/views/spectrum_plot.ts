/** Spectrum plot (paper Figs. 4, 5, 8): top singular values per layer, semi-log, networks overlaid. */
import { chartFigure, viewExport } from "./export";
import { caption, clear, colour, displayName, ensureStyles, fmt, GLOSSARY, h, lineChart, svg, svgText } from "./shared";
import type { SpectrumData, ViewHandle } from "./types";

/** Group series by layer, keeping first-seen order of layers and networks. */
export function groupByLayer(data: SpectrumData): { layers: string[]; networks: string[] } {
  const layers: string[] = [];
  const networks: string[] = [];
  for (const s of data.series) {
    if (!layers.includes(s.layer)) layers.push(s.layer);
    if (!networks.includes(s.network)) networks.push(s.network);
  }
  return { layers, networks };
}

export interface SpectrumOptions {
  /** Colour of each network (so that a network keeps its colour across charts, e.g. in Compare). */
  colors?: Record<string, string>;
}

/** Draw one semi-log panel per layer with one line per network. */
export function renderSpectrumPlot(
  el: HTMLElement,
  data: SpectrumData,
  options: SpectrumOptions = {},
): ViewHandle<Record<string, never>> {
  ensureStyles(el.ownerDocument);
  clear(el);
  const root = h("div", "pl-view pl-spectrum");
  const title = data.title ?? "Singular values (semi-log)";
  const head = h("div", "pl-head");
  head.appendChild(h("h4", "", title));
  head.appendChild(viewExport(() => root, title));
  root.appendChild(head);
  root.appendChild(caption(GLOSSARY.spectrum));
  if (data.series.some((s) => s.entropyRank !== undefined)) {
    root.appendChild(
      caption(
        `In the legend, each layer's ${GLOSSARY.entropyRank} A dotted line marks it when it falls within the plotted indices.`,
      ),
    );
  }
  const row = h("div", "pl-row");
  const { layers, networks } = groupByLayer(data);
  const colorOf = (net: string) => options.colors?.[net] ?? colour(networks.indexOf(net));
  for (const layer of layers) {
    const own = data.series.filter((s) => s.layer === layer);
    const series = own.map((s) => {
      const x = Array.from({ length: s.values.length }, (_, i) => i + 1);
      const name = s.entropyRank !== undefined ? `${s.network} (entropy rank ${fmt(s.entropyRank, 3)})` : s.network;
      return { name, x, y: s.values, color: colorOf(s.network) };
    });
    const chart = lineChart(series, {
      title: displayName(layer),
      xLabel: "index i",
      yLabel: "singular value σᵢ",
      logY: true,
      width: 320,
      height: 220,
    });
    chart.svg.dataset.layer = layer;
    // the entropy rank of each network: a dotted vertical line in its colour
    const g = chart.geometry;
    const xmax = Math.max(...own.map((s) => s.values.length));
    own.forEach((s) => {
      const er = s.entropyRank;
      if (er === undefined || !Number.isFinite(er) || er < 1 || er > xmax) return;
      const mark = svg("g", { class: "pl-entropy-rank", "data-network": s.network, "data-value": String(er) });
      const xv = g.x(er);
      mark.appendChild(
        svg("line", {
          x1: xv,
          x2: xv,
          y1: g.top,
          y2: g.bottom,
          stroke: colorOf(s.network),
          "stroke-width": 1.5,
          "stroke-dasharray": "2 3",
        }),
      );
      const tip = svg("title");
      tip.textContent = `${s.network}: entropy rank ${fmt(er, 4)}. ${GLOSSARY.entropyRank}`;
      mark.appendChild(tip);
      chart.svg.appendChild(mark);
    });
    if (own.length === 1 && own[0].entropyRank !== undefined) {
      // no legend with one line: say it in the plot
      chart.svg.appendChild(
        svgText(g.right - 4, g.top + 12, `entropy rank ${fmt(own[0].entropyRank, 3)}`, {
          "text-anchor": "end",
          "font-size": 11,
          fill: "currentColor",
        }),
      );
    }
    row.appendChild(chartFigure(chart.svg, `spectrum ${layer}`));
  }
  if (!layers.length) row.appendChild(h("span", "pl-muted", "no spectra"));
  root.appendChild(row);
  el.appendChild(root);
  return {
    update() {},
    destroy() {
      clear(el);
    },
  };
}
