/** Spectrum plot (paper Figs. 4, 5, 8): top singular values per layer, semi-log, networks overlaid. */
import { chartFigure, viewExport } from "./export";
import { caption, clear, colour, displayName, ensureStyles, GLOSSARY, h, lineChart } from "./shared";
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
export function renderSpectrumPlot(el: HTMLElement, data: SpectrumData, options: SpectrumOptions = {}): ViewHandle<Record<string, never>> {
  ensureStyles(el.ownerDocument);
  clear(el);
  const root = h("div", "pl-view pl-spectrum");
  const title = data.title ?? "Singular values (semi-log)";
  const head = h("div", "pl-head");
  head.appendChild(h("h4", "", title));
  head.appendChild(viewExport(() => root, title));
  root.appendChild(head);
  root.appendChild(caption(GLOSSARY.spectrum));
  const row = h("div", "pl-row");
  const { layers, networks } = groupByLayer(data);
  const colorOf = (net: string) => options.colors?.[net] ?? colour(networks.indexOf(net));
  for (const layer of layers) {
    const series = data.series
      .filter((s) => s.layer === layer)
      .map((s) => {
        const x = Array.from({ length: s.values.length }, (_, i) => i + 1);
        return { name: s.network, x, y: s.values, color: colorOf(s.network) };
      });
    const chart = lineChart(series, { title: displayName(layer), xLabel: "index i", yLabel: "singular value σᵢ", logY: true, width: 320, height: 220 });
    chart.svg.dataset.layer = layer;
    row.appendChild(chartFigure(chart.svg, `spectrum ${layer}`));
  }
  if (!layers.length) row.appendChild(h("span", "pl-muted", "no spectra"));
  root.appendChild(row);
  el.appendChild(root);
  return { update() {}, destroy() { clear(el); } };
}
