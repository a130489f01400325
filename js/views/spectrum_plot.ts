/** Spectrum plot (paper Figs. 4, 5, 8): top singular values per layer, semi-log, networks overlaid. */
import { clear, colour, ensureStyles, h, lineChart } from "./shared";
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

/** Draw one semi-log panel per layer with one line per network. */
export function renderSpectrumPlot(el: HTMLElement, data: SpectrumData): ViewHandle<Record<string, never>> {
  ensureStyles(el.ownerDocument);
  clear(el);
  const root = h("div", "pl-view pl-spectrum");
  root.appendChild(h("h4", "", data.title ?? "Singular values (semi-log)"));
  const row = h("div", "pl-row");
  const { layers, networks } = groupByLayer(data);
  for (const layer of layers) {
    const series = data.series
      .filter((s) => s.layer === layer)
      .map((s) => {
        const x = Array.from({ length: s.values.length }, (_, i) => i + 1);
        return { name: s.network, x, y: s.values, color: colour(networks.indexOf(s.network)) };
      });
    const chart = lineChart(series, { title: layer, xLabel: "index", yLabel: "singular value", logY: true, width: 300, height: 200 });
    chart.svg.dataset.layer = layer;
    row.appendChild(chart.svg);
  }
  if (!layers.length) row.appendChild(h("span", "pl-muted", "no spectra"));
  root.appendChild(row);
  el.appendChild(root);
  return { update() {}, destroy() { clear(el); } };
}
