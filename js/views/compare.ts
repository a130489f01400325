/**
 * Compare several networks: networks ranked by their quality score (when measured), RMSE curves and
 * spectra in one chart each, galleries side by side.
 */
import { chartFigure, viewExport } from "./export";
import {
  caption,
  clear,
  colour,
  ensureStyles,
  FONT,
  fmt,
  h,
  lineChart,
  moveMarker,
  nearestIndex,
  rankSlider,
  svg,
  svgText,
  textWidth,
} from "./shared";
import { renderLatentGallery } from "./latent_gallery";
import { renderSpectrumPlot } from "./spectrum_plot";
import type { CompareData, NetworkQuality, RankCallbacks, RankState, ViewHandle } from "./types";

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

/** The networks ranked by their quality score, best first, and which of them are within the seed noise. */
export interface QualityRanking {
  /** Networks with a score, best first. */
  ranked: { name: string; quality: NetworkQuality }[];
  /** Networks without a score, in their order. */
  unscored: string[];
  /** Score differences up to this are within the noise (null: no threshold known). */
  noise: number | null;
  /** Every pair (better first) whose scores differ by at most `noise`, as `pl.compare` flags them. */
  ties: [string, string][];
  /** False when the scores were measured on different inputs or layers (their fingerprints differ). */
  comparable: boolean;
}

/**
 * Rank the networks by score (ties in score keep their order). The noise threshold is
 * `data.noise`, else the largest calibrated seed noise among the scored networks.
 */
export function qualityRanking(data: CompareData): QualityRanking {
  const ranked = data.networks
    .map((n, i) => ({ name: n.name, quality: n.quality ?? null, i }))
    .filter((n): n is { name: string; quality: NetworkQuality; i: number } => n.quality !== null)
    .sort((a, b) => b.quality.score - a.quality.score || a.i - b.i)
    .map(({ name, quality }) => ({ name, quality }));
  const unscored = data.networks.filter((n) => !n.quality).map((n) => n.name);
  const seeds = ranked.map((n) => n.quality.seedNoise).filter((v): v is number => v !== null);
  const noise =
    typeof data.noise === "number" && Number.isFinite(data.noise)
      ? data.noise
      : seeds.length
        ? Math.max(...seeds)
        : null;
  const ties: [string, string][] = [];
  if (noise !== null) {
    for (let a = 0; a < ranked.length; a++) {
      for (let b = a + 1; b < ranked.length; b++) {
        if (Math.abs(ranked[a].quality.score - ranked[b].quality.score) <= noise) {
          ties.push([ranked[a].name, ranked[b].name]);
        }
      }
    }
  }
  const prints = new Set(ranked.map((n) => n.quality.fingerprint).filter((f) => f));
  return { ranked, unscored, noise, ties, comparable: prints.size <= 1 };
}

/** `text` shortened with an ellipsis to about `width` px. */
function clipText(text: string, width: number, size: number = FONT.text): string {
  if (textWidth(text, size) <= width) return text;
  let n = Math.max(1, Math.floor(width / (size * 0.58)) - 1);
  while (n > 1 && textWidth(`${text.slice(0, n)}…`, size) > width) n--;
  return `${text.slice(0, n)}…`;
}

/** A bar from 0 to `v` on a scale where `max` spans half of `width` (negative values go left). */
function divergingBar(g: SVGGElement, x: number, y: number, width: number, v: number, max: number, color: string) {
  const mid = x + width / 2;
  g.appendChild(svg("line", { x1: mid, x2: mid, y1: y - 9, y2: y + 9, stroke: "#999", "stroke-width": 1 }));
  if (!Number.isFinite(v)) return;
  const len = (Math.min(Math.abs(v), max) / max) * (width / 2);
  g.appendChild(
    svg("rect", {
      x: v >= 0 ? mid : mid - len,
      y: y - 7,
      width: Math.max(len, 0.5),
      height: 14,
      fill: color,
      class: "pl-quality-bar",
    }),
  );
}

/** Text of the confidence note: the calibration's held-out rho and tau with their intervals. */
export function confidenceNote(q: NetworkQuality | undefined): string {
  if (!q || q.rho === null) {
    return "Confidence: not calibrated (run benchmarks/quality_zoo.py).";
  }
  const ci = (c: [number, number] | null) => (c ? ` [${c[0].toFixed(2)}, ${c[1].toFixed(2)}]` : "");
  const tau = q.tau !== null ? ` and Kendall τ ${q.tau.toFixed(2)}${ci(q.tauCI)}` : "";
  const where = q.heldOut ? ` (${q.heldOut})` : "";
  return (
    `Confidence: on held-out training regimes${where} the score's Spearman ρ against test accuracy is ` +
    `${q.rho.toFixed(2)}${ci(q.rhoCI)}${tau}, 95 % bootstrap intervals (docs/quality.md).`
  );
}

/**
 * The ranked score panel: one row per scored network (best first) with its score and a bar per
 * component, "≈ within noise" between neighbours whose scores differ by at most the seed noise, and
 * the confidence note. Null when no network has a score.
 */
export function renderQualityPanel(data: CompareData, colors: Record<string, string>): HTMLElement | null {
  const rk = qualityRanking(data);
  if (!rk.ranked.length) return null;
  const box = h("div", "pl-quality");
  const comps = rk.ranked[0].quality.components.map((c) => c.name);
  const useTerms = rk.ranked.every((n) => n.quality.components.every((c) => c.term !== null));
  const ROW = 30;
  const TOP = 40;
  const NAME = 170;
  const BAR = 120;
  const VAL = 52;
  const CW = BAR + VAL + 12;
  const NOISE = 118;
  const W = NAME + CW + comps.length * CW + NOISE;
  const H = TOP + rk.ranked.length * ROW + 6;
  const root = svg("svg", {
    width: W,
    height: H,
    viewBox: `0 0 ${W} ${H}`,
    class: "pl-chart pl-quality-chart",
    "font-family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    "font-size": FONT.text,
  });
  root.appendChild(
    svgText(4, 15, "Quality score, best first (label-free; higher = better trained)", {
      "font-size": FONT.title,
      "font-weight": "bold",
    }),
  );
  const heads = ["score", ...comps.map((c) => (useTerms ? `${c} (z)` : c))];
  heads.forEach((t, j) => {
    const x = NAME + j * CW;
    root.appendChild(
      svgText(x + (BAR + VAL) / 2, TOP - 8, clipText(t, CW - 6, FONT.tick), {
        "text-anchor": "middle",
        "font-size": FONT.tick,
        fill: "#555",
      }),
    );
  });
  // one scale for the score and the standardized terms (both in z units); raw values each their own
  const zmax = Math.max(
    1e-12,
    ...rk.ranked.map((n) => Math.abs(n.quality.score)),
    ...(useTerms ? rk.ranked.flatMap((n) => n.quality.components.map((c) => Math.abs(c.term ?? 0))) : []),
  );
  const rawMax = comps.map((_, j) =>
    Math.max(1e-12, ...rk.ranked.map((n) => Math.abs(n.quality.components[j]?.value ?? 0) || 0)),
  );
  rk.ranked.forEach((n, i) => {
    const y = TOP + i * ROW + ROW / 2;
    const color = colors[n.name] ?? colour(i);
    const g = svg("g", { class: "pl-quality-row", "data-network": n.name, "data-score": n.quality.score });
    if (i % 2 === 0) {
      g.appendChild(svg("rect", { x: 0, y: y - ROW / 2, width: W - NOISE, height: ROW, fill: "#f4f4f4" }));
    }
    g.appendChild(svgText(4, y + 4, `${i + 1}`, { fill: "#555" }));
    g.appendChild(svg("rect", { x: 22, y: y - 6, width: 12, height: 12, rx: 2, fill: color, class: "pl-swatch" }));
    const label = svgText(40, y + 4, clipText(n.name, NAME - 46));
    const tip = svg("title");
    tip.textContent = n.name;
    label.appendChild(tip);
    g.appendChild(label);
    divergingBar(g, NAME, y, BAR, n.quality.score, zmax, color);
    g.appendChild(svgText(NAME + BAR + 4, y + 4, n.quality.score.toFixed(2), { "font-weight": "bold" }));
    n.quality.components.forEach((c, j) => {
      if (j >= comps.length) return;
      const x = NAME + (j + 1) * CW;
      if (useTerms) {
        // the bar's number (z) above, the raw value below it
        const term = c.term ?? Number.NaN;
        divergingBar(g, x, y, BAR, term, zmax, color);
        g.appendChild(
          svgText(x + BAR + 4, y - 2, `${term >= 0 ? "+" : ""}${term.toFixed(2)}`, { "font-size": FONT.tick }),
        );
        g.appendChild(svgText(x + BAR + 4, y + 11, fmt(c.value), { fill: "#666", "font-size": FONT.tick }));
      } else {
        divergingBar(g, x, y, BAR, c.value, rawMax[j], color);
        g.appendChild(svgText(x + BAR + 4, y + 4, fmt(c.value), { fill: "#333", "font-size": FONT.tick }));
      }
    });
    root.appendChild(g);
  });
  // "≈ within noise" between neighbours in the ranking
  const x0 = W - NOISE + 6;
  for (let i = 0; i + 1 < rk.ranked.length; i++) {
    const a = rk.ranked[i];
    const b = rk.ranked[i + 1];
    if (rk.noise === null || Math.abs(a.quality.score - b.quality.score) > rk.noise) continue;
    const y1 = TOP + i * ROW + ROW / 2;
    const y2 = y1 + ROW;
    const g = svg("g", { class: "pl-quality-noise", "data-a": a.name, "data-b": b.name });
    g.appendChild(
      svg("path", {
        d: `M${x0},${y1} h6 V${y2} h-6`,
        fill: "none",
        stroke: "#d62728",
        "stroke-width": 1.5,
      }),
    );
    g.appendChild(svgText(x0 + 10, (y1 + y2) / 2 + 4, "≈ within noise", { fill: "#d62728", "font-size": FONT.tick }));
    root.appendChild(g);
  }
  box.appendChild(chartFigure(root, "quality score ranking"));
  const what = useTerms
    ? "Each component's bar and upper number are its standardized term (z against the calibration networks, " +
      "signed so that higher = better trained; the score is their mean); the grey number below is its raw value."
    : "Each component's bar is its raw value (relative to the largest among these networks).";
  box.appendChild(caption(what, "pl-quality-what"));
  box.appendChild(caption(confidenceNote(rk.ranked[0].quality), "pl-quality-confidence"));
  if (rk.noise !== null) {
    box.appendChild(
      caption(
        `≈ within noise: the scores differ by at most ${fmt(rk.noise)}, the spread between training seeds ` +
          `of one regime${rk.ties.length ? "" : " (no pair here)"}: their order is not meaningful.`,
        "pl-quality-noise-note",
      ),
    );
  }
  if (!rk.comparable) {
    const warn = caption(
      "These scores were measured on different test inputs or layers (their fingerprints differ): " +
        "they are not comparable.",
      "pl-quality-warning",
    );
    warn.style.color = "#b00";
    box.appendChild(warn);
  }
  if (rk.unscored.length) {
    box.appendChild(caption(`Not scored (no quality saved with the results): ${rk.unscored.join(", ")}.`, "pl-muted"));
  }
  return box;
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
  const scores = renderQualityPanel(data, colors);
  if (scores) root.appendChild(scores);

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
