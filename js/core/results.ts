/**
 * A results payload (Sweep, Factorization, Activations or Spectrum) as the data the views draw:
 * the one results model of every front end (widgets, lab document, offline report).
 *
 * Everything the rank explorer needs comes from the metadata; arrays are read on demand (per rank,
 * per view) through the {@link Source}, so a lazily read file costs what the current view needs.
 */
import type { GalleryData, HeatmapData, ImageStack, LayerData, RankExplorerData, SpectrumData } from "../views/types";
import {
  classHistograms,
  factorStrength,
  inputImages,
  latentImages,
  type Matrix,
  normaliseThumbnails,
  tensorLoadings,
  topInputsAmong,
  utilisation,
  valueRange,
} from "./derive";
import { galleryInterpretation } from "./interpret";
import {
  type BlockInfo,
  type DisplayMeta,
  FileFormatError,
  type FitMeta,
  type Meta,
  type NdArray,
  type SampleMeta,
  type Source,
} from "./schema";

function asMatrix(a: NdArray, what: string): Matrix {
  if (a.shape.length !== 2) {
    throw new FileFormatError(`${what} should be a matrix, got shape (${a.shape})`);
  }
  return { rows: a.shape[0], cols: a.shape[1], data: a.data };
}

function f32(a: ArrayLike<number>): Float32Array {
  return a instanceof Float32Array ? a : Float32Array.from(a);
}

/** Index of `v` in the sorted array `a`, or -1. */
function search(a: ArrayLike<number>, v: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] === v) return mid;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** Options of the derived views. */
export interface ViewOptions {
  /** Top inputs counted in each factor's class histogram (default 50, as `peeklens.views`). */
  histK?: number;
  /** Neuron utilisation threshold (default 0.01). */
  threshold?: number;
  /** The explained layer the gallery shows (default: the first in the file). */
  interpretLayer?: string;
}

export class Results {
  /** Swept ranks (one for a Factorization, none for Activations / Spectrum). */
  readonly ranks: number[];
  readonly name: string;

  constructor(readonly source: Source) {
    const m = source.meta;
    this.name = source.name;
    if (m.type === "Sweep") {
      this.ranks = Object.keys(m.fits || {})
        .map(Number)
        .sort((a, b) => a - b);
    } else if (m.type === "Factorization") {
      this.ranks = [Number(m.fit?.rank)];
    } else if (m.type === "Activations" || m.type === "Spectrum") {
      this.ranks = [];
    } else {
      throw new FileFormatError(`${this.name}: unknown object type ${JSON.stringify(m.type)}`);
    }
  }

  get type(): string {
    return String(this.source.meta.type);
  }

  get meta(): Meta {
    return this.source.meta;
  }

  /** Whether the payload holds factorizations (Sweep or Factorization). */
  get hasFits(): boolean {
    return this.ranks.length > 0;
  }

  fit(rank: number): FitMeta {
    const m = this.meta;
    const f = this.type === "Sweep" ? m.fits?.[String(rank)] : m.fit;
    if (!f || (this.type === "Factorization" && Number(f.rank) !== rank)) {
      throw new FileFormatError(`${this.name} has no factorization at rank ${rank}; ranks are ${this.ranks}`);
    }
    return f;
  }

  /** Block descriptions (input channels and layers), from the first fit or the Activations. */
  get blocks(): BlockInfo[] {
    if (this.hasFits) {
      const f = this.fit(this.ranks[0]);
      return f.blocks.map((b, i) => ({ ...b, name: f.names[i] }));
    }
    if (this.type === "Activations") {
      return (this.meta.blocks ?? []).map((b, i) => ({ ...b, name: (this.meta.names ?? [])[i] }));
    }
    return [];
  }

  get inputBlocks(): BlockInfo[] {
    return this.blocks.filter((b) => b.kind === "input");
  }

  get layerBlocks(): BlockInfo[] {
    return this.blocks.filter((b) => b.kind === "layer");
  }

  /** The schema's sample fields (labels, inputs, display). */
  private get shared(): Partial<SampleMeta> {
    return (this.type === "Factorization" ? this.meta.fit : this.meta) ?? {};
  }

  /** The display section, or null (version-1 files, no input channels). */
  /** Whether there is a latent gallery to show: input-channel blocks, or token samples kept as text or patches. */
  get hasGallery(): boolean {
    const d = this.display;
    return this.inputBlocks.length > 0 || !!(d?.samples && (d.text || d.patches));
  }

  get display(): DisplayMeta | null {
    return this.shared.display ?? null;
  }

  /** Names of the label classes, when the payload has them. */
  get classNames(): string[] | undefined {
    return this.display?.class_names ?? undefined;
  }

  /** Number of samples. */
  get nSamples(): number {
    const shapes = this.meta.shapes || {};
    if (this.hasFits) {
      return shapes[this.fit(this.ranks[0]).F]?.[0] ?? 0;
    }
    if (this.type === "Activations") {
      return shapes[(this.meta.arrays ?? [])[0]]?.[1] ?? 0;
    }
    return 0;
  }

  private async array(key: string): Promise<NdArray> {
    return this.source.getArray(key);
  }

  /** Per-sample labels (display only), or null. */
  async labels(): Promise<Float64Array | null> {
    const key = this.type === "Activations" ? (this.meta.labels as string | null) : this.shared.labels;
    if (!key) {
      return null;
    }
    const a = await this.array(key);
    return Float64Array.from(a.data);
  }

  /** The full input-channel matrices (pixels x samples) when the payload keeps them, or null. */
  async inputs(): Promise<{ blocks: BlockInfo[]; data: Matrix[] } | null> {
    const blocks = this.inputBlocks;
    if (this.type === "Activations") {
      if (!blocks.length) {
        return null;
      }
      const names = this.meta.names ?? [];
      const data = await Promise.all(
        blocks.map(async (b) => asMatrix(await this.array((this.meta.arrays ?? [])[names.indexOf(b.name)]), b.name)),
      );
      return { blocks, data };
    }
    const inp = this.shared.inputs;
    if (!inp || !blocks.length) {
      return null;
    }
    const data = await Promise.all(
      blocks.map(async (b) => {
        const i = inp.names.indexOf(b.name);
        if (i < 0) {
          throw new FileFormatError(`${this.name}: input ${JSON.stringify(b.name)} is missing from the inputs`);
        }
        return asMatrix(await this.array(inp.arrays[i]), b.name);
      }),
    );
    return { blocks, data };
  }

  async F(rank: number): Promise<Matrix> {
    return asMatrix(await this.array(this.fit(rank).F), `F at rank ${rank}`);
  }

  async loadings(rank: number, block: string): Promise<Matrix> {
    const f = this.fit(rank);
    const i = f.names.indexOf(block);
    if (i < 0) {
      throw new FileFormatError(`${this.name}: no block named ${JSON.stringify(block)} at rank ${rank}`);
    }
    return asMatrix(await this.array(f.W[i]), `loadings of ${JSON.stringify(block)}`);
  }

  /** Errors per rank for the rank explorer (from the metadata alone). */
  rankExplorerData(): RankExplorerData {
    const ranks = this.ranks;
    const names = this.hasFits ? this.fit(ranks[0]).names : [];
    const rmse = new Float32Array(ranks.length);
    const blockErrors = new Float32Array(names.length * ranks.length);
    ranks.forEach((r, j) => {
      const f = this.fit(r);
      rmse[j] = f.rmse;
      names.forEach((n, b) => {
        const i = f.names.indexOf(n);
        blockErrors[b * ranks.length + j] = i >= 0 ? f.errors[i] : Number.NaN;
      });
    });
    return { ranks, rmse, blockNames: names.slice(), blockErrors };
  }

  /**
   * Each factor's top input images (normalised for display), from the display section, or from the
   * full inputs of a version-1 file; null when neither is there.
   */
  async topImages(F: Matrix): Promise<{ images: ImageStack; k: number; samples: Int32Array } | null> {
    const inputs = this.inputBlocks;
    const d = this.display;
    if (d?.samples && d.images.length === inputs.length && d.top_k > 0) {
      const samples = (await this.array(d.samples)).data;
      const chans = await Promise.all(
        d.images.map((key, i) => this.array(key).then((a) => asMatrix(a, inputs[i].name))),
      );
      const top = topInputsAmong(F, samples, d.top_k);
      const cols = new Int32Array(top.length);
      for (let i = 0; i < top.length; i++) {
        cols[i] = search(samples, top[i]);
        if (cols[i] < 0) {
          throw new FileFormatError(`${this.name}: sample ${top[i]} is missing from the display images`);
        }
      }
      const images = normaliseThumbnails(inputImages(chans, inputs[0].shape, cols), d.value_range);
      return { images, k: Math.min(d.top_k, samples.length), samples: top };
    }
    const inp = await this.inputs();
    if (!inp) {
      return null;
    }
    const k = Math.min(8, F.rows);
    const all = new Int32Array(F.rows).map((_, i) => i);
    const top = topInputsAmong(F, all, k);
    return {
      images: normaliseThumbnails(inputImages(inp.data, inputs[0].shape, top), valueRange(inp.data)),
      k,
      samples: top,
    };
  }

  /** Token samples: each factor's top samples among the display section, with their text; null without text. */
  async topTexts(F: Matrix): Promise<{ texts: string[]; k: number; samples: Int32Array } | null> {
    const d = this.display;
    const text = d?.text;
    if (!d?.samples || !text || d.top_k <= 0) return null;
    const samples = (await this.array(d.samples)).data;
    const top = topInputsAmong(F, samples, d.top_k);
    const texts = Array.from(top, (s) => text[search(samples, s)] ?? "");
    return { texts, k: Math.min(d.top_k, samples.length), samples: top };
  }

  /** Image-patch token samples: each factor's top samples' patch crops, boxes and cells; null without them. */
  async topPatches(
    F: Matrix,
  ): Promise<{ images: ImageStack; boxes: Int32Array; cells: Int32Array; k: number; samples: Int32Array } | null> {
    const d = this.display;
    const p = d?.patches;
    if (!d?.samples || !p || d.top_k <= 0) return null;
    const [samples, crops, boxes, cells] = await Promise.all(
      [d.samples, p.images, p.boxes, p.cells].map((key) => this.array(key)),
    );
    const [, h, w, c] = crops.shape;
    const top = topInputsAmong(F, samples.data, d.top_k);
    const size = h * w * c;
    const data = new Float32Array(top.length * size);
    const outBoxes = new Int32Array(top.length * 4).fill(-1);
    const outCells = new Int32Array(top.length * 2).fill(-1);
    top.forEach((s, i) => {
      const j = search(samples.data, s);
      if (j < 0) throw new FileFormatError(`${this.name}: sample ${s} is missing from the display patches`);
      data.set((crops.data as Float32Array).subarray(j * size, (j + 1) * size), i * size);
      for (let q = 0; q < 4; q++) outBoxes[i * 4 + q] = Number(boxes.data[j * 4 + q]);
      for (let q = 0; q < 2; q++) outCells[i * 2 + q] = Number(cells.data[j * 2 + q]);
    });
    return {
      images: { data, count: top.length, height: h, width: w, channels: c },
      boxes: outBoxes,
      cells: outCells,
      k: Math.min(d.top_k, samples.data.length),
      samples: top,
    };
  }

  /** The gallery of token samples without input blocks: each factor's top tokens as text (or image patches). */
  private async tokenGallery(rank: number, options: ViewOptions): Promise<GalleryData | null> {
    const f = this.fit(rank);
    const [F, allW, labels] = await Promise.all([
      this.F(rank),
      Promise.all(f.names.map((n) => this.loadings(rank, n))),
      this.labels(),
    ]);
    const tt = await this.topTexts(F);
    const tp = tt ? null : await this.topPatches(F);
    const top = tt ?? tp;
    if (!top) return null;
    const hist = labels ? classHistograms(F, labels, options.histK ?? 50) : null;
    return {
      rank,
      latents: { data: new Float32Array(0), count: 0, height: 1, width: 1, channels: 1 },
      topInputs: null,
      topK: top.k,
      topSamples: top.samples,
      topTexts: tt ? tt.texts : null,
      topPatches: tp ? { images: tp.images, boxes: tp.boxes, cells: tp.cells } : null,
      histograms: hist ? hist.counts : null,
      nClasses: hist ? hist.nClasses : 0,
      classNames: this.classNames,
      strength: factorStrength(F, allW),
    };
  }

  /** The latent image gallery of one rank: latent images, top inputs and class histograms. */
  async galleryData(rank: number, options: ViewOptions = {}): Promise<GalleryData | null> {
    const inputs = this.inputBlocks;
    if (!inputs.length) {
      return this.tokenGallery(rank, options);
    }
    const f = this.fit(rank);
    const [F, allW, labels, allS] = await Promise.all([
      this.F(rank),
      Promise.all(f.names.map((n) => this.loadings(rank, n))),
      this.labels(),
      Promise.all(f.names.map((n) => this.spatial(rank, n))),
    ]);
    const latents = latentImages(
      inputs.map((b) => allW[f.names.indexOf(b.name)]),
      inputs[0].shape,
    );
    const top = await this.topImages(F);
    let histograms: Int32Array | null = null;
    let nClasses = 0;
    if (labels) {
      const hist = classHistograms(F, labels, options.histK ?? 50);
      histograms = hist.counts;
      nClasses = hist.nClasses;
    }
    return {
      rank,
      latents,
      topInputs: top ? top.images : null,
      topK: top ? top.k : 0,
      topSamples: top ? top.samples : null,
      topTexts: (await this.topTexts(F))?.texts ?? null,
      histograms,
      nClasses,
      classNames: this.classNames,
      // tensor blocks: the factor's neuron loadings are channel x position products
      strength: factorStrength(
        F,
        allW.map((W, i) => {
          const S = allS[i];
          return S ? tensorLoadings(W, S) : W;
        }),
      ),
      interpretation: await galleryInterpretation(
        this.source,
        f,
        top ? top.samples : null,
        top ? top.k : 0,
        options.interpretLayer,
      ),
    };
  }

  /** Latent images only (reads just the input-side loadings), for a quick first paint and comparisons. */
  async latentGallery(rank: number): Promise<GalleryData | null> {
    const inputs = this.inputBlocks;
    if (!inputs.length) {
      return null;
    }
    const Ws = await Promise.all(inputs.map((b) => this.loadings(rank, b.name)));
    return {
      rank,
      latents: latentImages(Ws, inputs[0].shape),
      topInputs: null,
      topK: 0,
      histograms: null,
      nClasses: 0,
    };
  }

  /** Neuron x factor loadings of some layers (default: every layer block) at one rank. */
  async heatmapData(rank: number, options: ViewOptions & { layers?: string[] } = {}): Promise<HeatmapData> {
    const threshold = options.threshold ?? 0.01;
    const chosen = options.layers
      ? options.layers.map((n) => {
          const b = this.blocks.find((x) => x.name === n);
          if (!b) throw new FileFormatError(`${this.name}: no block named ${JSON.stringify(n)}`);
          return b;
        })
      : this.layerBlocks;
    const layers: LayerData[] = await Promise.all(
      chosen.map(async (b) => {
        const [O, S] = await Promise.all([this.loadings(rank, b.name), this.spatial(rank, b.name)]);
        const layer: LayerData = {
          name: b.name,
          shape: b.shape,
          loadings: f32(O.data),
          unusedShare: utilisation(S ? tensorLoadings(O, S) : O, b.shape, threshold).unusedShare,
        };
        if (S) layer.spatial = f32(S.data);
        if (this.isSigned(rank, b.name)) layer.signed = true;
        return layer;
      }),
    );
    return { rank, layers, threshold };
  }

  /**
   * Tensor model: the spatial factor (positions x rank) of tensor block `block` at `rank`, whose
   * {@link loadings} are then its channel factor; null for a matrix block or a matrix-model fit.
   */
  async spatial(rank: number, block: string): Promise<Matrix | null> {
    const f = this.fit(rank);
    const key = f.spatial?.[String(f.names.indexOf(block))];
    return key ? asMatrix(await this.array(key), `spatial factor of ${JSON.stringify(block)}`) : null;
  }

  /** Whether `block` is signed (semi-NMF) at `rank`: its block info, or the fit's `settings.signed` in older files. */
  isSigned(rank: number, block: string): boolean {
    const f = this.fit(rank);
    const info = f.blocks[f.names.indexOf(block)];
    if (info && typeof info.signed === "boolean") return info.signed;
    const listed = f.settings?.signed;
    return Array.isArray(listed) && listed.includes(block);
  }

  /** Singular values per block (Spectrum payloads), or null. */
  async spectrumData(network?: string): Promise<SpectrumData | null> {
    if (this.type !== "Spectrum") {
      return null;
    }
    const names = this.meta.names ?? [];
    const series = await Promise.all(
      names.map(async (n, i) => ({
        network: network ?? this.name,
        layer: n,
        values: f32((await this.array((this.meta.values ?? [])[i])).data),
        ...entropyRankOf(this.meta.entropy_rank?.[i]),
      })),
    );
    return { series };
  }

  /** The first `count` input images with their labels (Activations payloads). */
  async sampleImages(count = 32): Promise<{ images: ImageStack; labels: Float64Array | null } | null> {
    const inp = await this.inputs();
    if (!inp) {
      return null;
    }
    const n = Math.min(count, inp.data[0].cols);
    const idx = Array.from({ length: n }, (_, i) => i);
    const labels = await this.labels();
    return {
      images: normaliseThumbnails(inputImages(inp.data, inp.blocks[0].shape, idx), valueRange(inp.data)),
      labels: labels ? labels.subarray(0, n) : null,
    };
  }
}

/** `{ entropyRank }` when the saved value is a finite number (older files may lack it). */
function entropyRankOf(v: unknown): { entropyRank?: number } {
  const x = v === null || v === undefined ? Number.NaN : Number(v);
  return Number.isFinite(x) ? { entropyRank: x } : {};
}
