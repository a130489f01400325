/**
 * The results document: rank explorer, latent image gallery, neuron heatmaps, spectra and a
 * comparison with other saved results, drawn with the shared views of `js/views`. The body of the
 * JupyterLab `.peeklens` document and of each network in the offline HTML report.
 *
 * No kernel: arrays are read from the source on demand (see {@link Results}); moving the rank slider
 * reads the arrays of that rank (cached afterwards). Every name from the file is shown as text.
 */
import {
  clear,
  type CompareData,
  type CompareNetwork,
  displayName,
  ensureStyles,
  fmt,
  type GalleryData,
  GLOSSARY,
  h,
  type HeatmapData,
  renderCompare,
  renderLatentGallery,
  renderNeuronHeatmaps,
  renderRankExplorer,
  renderSpectrumPlot,
  type SpectrumData,
  stackCanvas,
  type ViewHandle,
  viewExport,
} from "../views/index";
import { qualityOf } from "./quality";
import { Results } from "./results";
import { ZipSource } from "./source";
import type { ByteSource } from "./zip";

/** Another saved result in the same folder, offered for comparison. */
export interface Sibling {
  /** Name shown (the file name). */
  name: string;
  /** Opens it. */
  open(): Promise<Results>;
}

export interface PanelOptions {
  /** Other `.peeklens` files that can be compared with this one. */
  siblings?: () => Promise<Sibling[]>;
  /** Heading of the document (default: the source's name). */
  title?: string;
  /** Show the Compare section (default true). */
  compare?: boolean;
  /** Text of the Compare section's introduction. */
  compareIntro?: string;
}

/** A titled section; the views drawn in its body bring their own "save as PNG / SVG" buttons. */
function section(title: string | null, cls: string): { root: HTMLElement; body: HTMLElement } {
  const root = h("section", `pl-lab-section ${cls}`);
  const body = h("div", "pl-lab-body");
  if (title) {
    const head = h("div", "pl-lab-head");
    head.appendChild(h("h3", "pl-lab-h", title));
    root.appendChild(head);
  }
  root.appendChild(body);
  return { root, body };
}

function errorBox(el: HTMLElement, err: unknown, replace = true): void {
  if (replace) {
    clear(el);
  }
  const box = h("div", "pl-lab-error");
  box.textContent = String((err as Error)?.message ?? err);
  el.appendChild(box);
}

/** One network of a comparison: its RMSE per rank, latent images and quality score (null for non-factorizations). */
export async function compareNetwork(r: Results, name = r.name): Promise<CompareNetwork | null> {
  if (!r.hasFits) {
    return null;
  }
  const ex = r.rankExplorerData();
  const galleries: GalleryData[] = [];
  if (r.inputBlocks.length) {
    for (const k of r.ranks) {
      const g = await r.latentGallery(k);
      if (g) {
        galleries.push(g);
      }
    }
  }
  return {
    name,
    ranks: r.ranks,
    rmse: ex.rmse,
    galleries: galleries.length === r.ranks.length ? galleries : [],
    quality: qualityOf(r.meta),
  };
}

/** The comparison of several results: sweeps side by side, spectra overlaid (names default to the sources'). */
export async function compareDataOf(all: Results[], names?: string[]): Promise<CompareData> {
  const networks: CompareNetwork[] = [];
  const spectra: SpectrumData = { series: [] };
  for (let i = 0; i < all.length; i++) {
    const r = all[i];
    const name = names?.[i] ?? r.name;
    const n = await compareNetwork(r, name);
    if (n) {
      networks.push(n);
    }
    const sp = await r.spectrumData(name);
    if (sp) {
      spectra.series.push(...sp.series);
    }
  }
  return { networks, spectra: spectra.series.length ? spectra : null };
}

/** Build the document into `host`. Returns a handle to change the rank from outside and to clean up. */
export class PeeklensView {
  readonly node: HTMLElement;
  rank = 0;
  factor = 0;
  private galleries = new Map<number, Promise<GalleryData | null>>();
  private galleriesDone = new Map<number, GalleryData>();
  private latents = new Map<number, Promise<GalleryData | null>>();
  private heatmaps = new Map<number, Promise<HeatmapData>>();
  private handles: ViewHandle<any>[] = [];
  private explorer: ViewHandle<{ rank: number }> | null = null;
  private galleryEl: HTMLElement | null = null;
  private heatEl: HTMLElement | null = null;
  private galleryHandle: ViewHandle<{ factor: number }> | null = null;
  private heatHandle: ViewHandle<{ factor: number }> | null = null;
  private compareHandle: ViewHandle<{ rank: number }> | null = null;
  private token = 0;
  /** Resolves when the views of the current rank are drawn (for tests and callers). */
  drawn: Promise<void> = Promise.resolve();
  /** Milliseconds the last redraw after a rank change took. */
  lastRedrawMs = 0;

  constructor(
    readonly results: Results,
    private readonly options: PanelOptions = {},
  ) {
    this.node = h("div", "pl-lab-document pl-view");
    ensureStyles(this.node.ownerDocument ?? document);
    this.build();
  }

  static async fromBytes(source: ByteSource, name: string, options: PanelOptions = {}): Promise<PeeklensView> {
    return new PeeklensView(new Results(await ZipSource.open(source, name)), options);
  }

  private build(): void {
    const r = this.results;
    const head = h("header", "pl-lab-header");
    head.appendChild(h("h2", "pl-lab-title", this.options.title ?? r.name));
    head.appendChild(h("div", "pl-muted pl-lab-summary", this.summary()));
    this.node.appendChild(head);

    if (r.hasFits) {
      this.rank = r.ranks.includes(10) ? 10 : r.ranks[0];
      const ex = section("Rank explorer", "pl-lab-explorer");
      this.node.appendChild(ex.root);
      const data = r.rankExplorerData();
      data.title = r.type === "Sweep" ? `${r.ranks.length} ranks swept` : `one factorization (rank ${r.ranks[0]})`;
      this.explorer = renderRankExplorer(ex.body, data, { rank: this.rank }, { onRank: (k) => this.setRank(k) });
      this.handles.push(this.explorer);

      const gal = section(null, "pl-lab-gallery");
      this.galleryEl = gal.body;
      if (r.hasGallery) {
        this.node.appendChild(gal.root);
      }
      const heat = section(null, "pl-lab-heatmaps");
      this.heatEl = heat.body;
      if (r.layerBlocks.length) {
        this.node.appendChild(heat.root);
      }
      this.setRank(this.rank, true);
    } else if (r.type === "Spectrum") {
      const sp = section("Spectrum", "pl-lab-spectrum");
      this.node.appendChild(sp.root);
      void this.drawSpectrum(sp.body);
    } else if (r.type === "Activations") {
      const act = section("Activations", "pl-lab-activations");
      this.node.appendChild(act.root);
      void this.drawActivations(act.body);
    }

    if ((r.hasFits || r.type === "Spectrum") && this.options.compare !== false) {
      const cmp = section("Compare", "pl-lab-compare");
      this.node.appendChild(cmp.root);
      this.buildCompare(cmp.body);
    }
  }

  private summary(): string {
    const r = this.results;
    const m = r.meta;
    const parts = [r.type];
    if (r.hasFits) {
      parts.push(r.type === "Sweep" ? `ranks ${r.ranks.join(", ")}` : `rank ${r.ranks[0]}`);
      const s = r.fit(r.ranks[0]).settings || {};
      if (s.solver) {
        parts.push(`solver ${s.solver}`);
      }
      if (m.interrupted) {
        parts.push("interrupted (finished ranks kept)");
      }
    }
    const n = r.nSamples;
    if (n) {
      parts.push(`${n} samples`);
    }
    const blocks = r.blocks;
    if (blocks.length) {
      parts.push(`blocks: ${blocks.map((b) => `${b.name} (${b.kind}, ${b.shape.join("×")})`).join(", ")}`);
    }
    parts.push(`peeklens ${m.peeklens ?? "?"}, torch ${m.torch ?? "?"}, saved ${m.created ?? "?"}`);
    return parts.join(" · ");
  }

  private gallery(rank: number): Promise<GalleryData | null> {
    let p = this.galleries.get(rank);
    if (!p) {
      p = this.results.galleryData(rank);
      this.galleries.set(rank, p);
      p.catch(() => this.galleries.delete(rank));
    }
    return p;
  }

  private heatmap(rank: number): Promise<HeatmapData> {
    let p = this.heatmaps.get(rank);
    if (!p) {
      p = this.results.heatmapData(rank);
      this.heatmaps.set(rank, p);
      p.catch(() => this.heatmaps.delete(rank));
    }
    return p;
  }

  /** Show another rank: the explorer marker, the gallery and the heatmaps follow. */
  setRank(rank: number, force = false): Promise<void> {
    if (!this.results.ranks.includes(rank)) {
      return this.drawn;
    }
    if (rank === this.rank && !force) {
      return this.drawn;
    }
    this.rank = rank;
    this.node.dataset.rank = String(rank);
    this.explorer?.update({ rank });
    this.compareHandle?.update({ rank });
    if (this.factor >= rank) {
      this.factor = 0;
    }
    const token = ++this.token;
    const t0 = performance.now();
    const r = this.results;
    this.drawn = (async () => {
      // First paint: the latent images (small: the input-side loadings) and the heatmaps; the top
      // inputs and class histograms need the stored input images, which may be large, and follow.
      const ready = this.galleriesDone.get(rank);
      const [quick, hm] = await Promise.all([
        ready ?? (r.inputBlocks.length ? this.latent(rank).catch((e) => e as Error) : Promise.resolve(null)),
        r.layerBlocks.length ? this.heatmap(rank).catch((e) => e as Error) : Promise.resolve(null),
      ]);
      if (token !== this.token) {
        return;
      }
      this.drawGallery(this.galleriesDone.get(rank) ?? quick);
      if (this.heatEl && hm) {
        this.heatHandle?.destroy();
        this.heatHandle = null;
        if (hm instanceof Error) {
          errorBox(this.heatEl, hm);
        } else {
          this.heatHandle = renderNeuronHeatmaps(
            this.heatEl,
            hm,
            { factor: this.factor },
            {
              onFactor: (f) => this.setFactor(f),
            },
          );
        }
      }
      this.lastRedrawMs = performance.now() - t0;
      this.node.dataset.redrawMs = this.lastRedrawMs.toFixed(1);
      this.node.dataset.drawnRank = String(rank);
      // Started only now, so that reading and checking a large input array never delays the first paint.
      const g = r.hasGallery ? await this.gallery(rank).catch((e) => e as Error) : null;
      if (token !== this.token) {
        return;
      }
      if (g && !(g instanceof Error)) {
        this.galleriesDone.set(rank, g);
      }
      if (g !== quick) {
        this.drawGallery(g);
      }
      this.node.dataset.completeRank = String(rank);
    })();
    return this.drawn;
  }

  private latent(rank: number): Promise<GalleryData | null> {
    let p = this.latents.get(rank);
    if (!p) {
      p = this.results.latentGallery(rank);
      this.latents.set(rank, p);
      p.catch(() => this.latents.delete(rank));
    }
    return p;
  }

  private drawGallery(g: GalleryData | Error | null): void {
    if (!this.galleryEl || !g) {
      return;
    }
    this.galleryHandle?.destroy();
    this.galleryHandle = null;
    if (g instanceof Error) {
      errorBox(this.galleryEl, g);
      return;
    }
    this.galleryHandle = renderLatentGallery(
      this.galleryEl,
      g,
      { factor: this.factor },
      {
        onFactor: (f) => this.setFactor(f),
      },
    );
  }

  /** Select a factor: the gallery highlight and the heatmaps' spatial maps follow. */
  setFactor(factor: number): void {
    if (factor < 0 || factor >= this.rank) {
      return;
    }
    this.factor = factor;
    this.node.dataset.factor = String(factor);
    this.galleryHandle?.update({ factor });
    this.heatHandle?.update({ factor });
  }

  private async drawSpectrum(el: HTMLElement): Promise<void> {
    try {
      const data = (await this.results.spectrumData(this.results.name)) as SpectrumData;
      const plot = h("div");
      el.appendChild(plot);
      this.handles.push(renderSpectrumPlot(plot, data));
      const m = this.results.meta;
      const table = h("table", "pl-lab-table");
      const head = h("tr");
      const tips: Record<string, string> = {
        "entropy effective rank": GLOSSARY.entropyRank,
        "stable rank": GLOSSARY.stableRank,
      };
      for (const t of ["block", "entropy effective rank", "stable rank", "method"]) {
        const th = h("th", "", t);
        if (tips[t]) {
          th.title = tips[t];
          th.classList.add("pl-has-tip");
        }
        head.appendChild(th);
      }
      table.appendChild(head);
      (m.names as string[]).forEach((n, i) => {
        const row = h("tr");
        // the block's name as the charts above title it ("input channel 0"), the saved name on hover
        const name = h("td", "", displayName(n));
        name.title = n;
        row.appendChild(name);
        row.appendChild(h("td", "", fmt(Number(m.entropy_rank?.[i]), 4)));
        row.appendChild(h("td", "", fmt(Number(m.stable_rank?.[i]), 4)));
        row.appendChild(h("td", "", String(m.method?.[i] ?? "")));
        table.appendChild(row);
      });
      el.appendChild(table);
    } catch (e) {
      errorBox(el, e);
    }
  }

  private async drawActivations(el: HTMLElement): Promise<void> {
    const r = this.results;
    const table = h("table", "pl-lab-table");
    const head = h("tr");
    ["block", "kind", "shape", "features"].forEach((t) => head.appendChild(h("th", "", t)));
    table.appendChild(head);
    for (const b of r.blocks) {
      const row = h("tr");
      [b.name, b.kind, b.shape.join("×"), String(b.n_features)].forEach((t) => row.appendChild(h("td", "", t)));
      table.appendChild(row);
    }
    el.appendChild(table);
    el.appendChild(
      h(
        "p",
        "pl-muted",
        "Factorize these activations in a notebook (pl.sweep) and save the sweep to explore factors here.",
      ),
    );
    try {
      const s = await r.sampleImages(32);
      if (s) {
        const title = `First ${s.images.count} inputs`;
        const grid = h("div", "pl-gallery");
        const head = h("div", "pl-head");
        head.append(
          h("h4", "", title),
          viewExport(() => grid, title),
        );
        el.appendChild(head);
        for (let i = 0; i < s.images.count; i++) {
          const tile = h("div", "pl-map");
          tile.appendChild(stackCanvas(s.images, i, 40));
          if (s.labels) {
            tile.appendChild(h("span", "", String(s.labels[i])));
          }
          grid.appendChild(tile);
        }
        el.appendChild(grid);
      }
    } catch (e) {
      errorBox(el, e);
    }
  }

  // ---------------------------------------------------------------------------------- compare
  private buildCompare(el: HTMLElement): void {
    const intro = h(
      "p",
      "pl-muted",
      this.options.compareIntro ??
        "Overlay other saved results from this folder (sweeps of networks trained differently, spectra); " +
          "networks saved with their quality score (pl.quality) are ranked by it.",
    );
    el.appendChild(intro);
    const list = h("div", "pl-lab-siblings");
    el.appendChild(list);
    const button = h("button", "jp-mod-styled jp-mod-accept pl-lab-compare-button", "Compare");
    button.disabled = true;
    el.appendChild(button);
    const out = h("div", "pl-lab-compare-out");
    el.appendChild(out);
    const boxes: { box: HTMLInputElement; sib: Sibling }[] = [];
    const load = async () => {
      const sibs = this.options.siblings ? await this.options.siblings() : [];
      clear(list);
      if (!sibs.length) {
        list.appendChild(h("span", "pl-muted", "No other .peeklens files in this folder."));
      }
      for (const sib of sibs) {
        const lab = h("label", "pl-lab-sibling");
        const box = h("input");
        box.type = "checkbox";
        box.checked = true;
        lab.appendChild(box);
        lab.appendChild(document.createTextNode(" " + sib.name));
        list.appendChild(lab);
        boxes.push({ box, sib });
      }
      button.disabled = false;
    };
    load().catch((e) => errorBox(list, e));
    button.addEventListener("click", () => {
      const chosen = boxes.filter((b) => b.box.checked).map((b) => b.sib);
      button.disabled = true;
      this.drawCompare(out, chosen).finally(() => (button.disabled = false));
    });
  }

  /** Draw the comparison of this file with `others`. */
  async drawCompare(out: HTMLElement, others: Sibling[]): Promise<void> {
    this.compareHandle?.destroy();
    this.compareHandle = null;
    clear(out);
    out.appendChild(h("span", "pl-muted", "loading…"));
    try {
      // A file that cannot be read (damaged, edited) is named, and the others are still compared.
      const opened = await Promise.all(others.map((s) => s.open().catch((e: unknown) => ({ failed: s.name, e }))));
      const all = [this.results, ...opened.filter((o): o is Results => o instanceof Results)];
      const data = await compareDataOf(all);
      clear(out);
      for (const o of opened) {
        if (!(o instanceof Results)) {
          errorBox(out, `${o.failed} is left out: ${(o.e as Error)?.message ?? o.e}`, false);
        }
      }
      const host = h("div");
      out.appendChild(host);
      // the comparison's rank slider and the document's follow each other
      this.compareHandle = renderCompare(host, data, { rank: this.rank }, { onRank: (k) => void this.setRank(k) });
    } catch (e) {
      errorBox(out, e);
    }
  }

  dispose(): void {
    for (const hd of this.handles) {
      hd.destroy();
    }
    this.galleryHandle?.destroy();
    this.heatHandle?.destroy();
    this.compareHandle?.destroy();
    this.handles = [];
  }
}
