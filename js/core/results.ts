/**
 * A saved result (Sweep, Factorization, Activations or Spectrum) as the data the views draw.
 *
 * Everything the rank explorer needs comes from `meta.json`; arrays are read on demand (per rank,
 * per view) through the lazy {@link PeeklensFile}.
 */
import type {
  GalleryData,
  HeatmapData,
  ImageStack,
  LayerData,
  RankExplorerData,
  SpectrumData
} from '../../views/types';
import {
  classHistograms,
  displayRange,
  factorStrength,
  inputImages,
  latentImages,
  Matrix,
  topInputs,
  utilisation
} from './derive';
import { ByteSource, FileFormatError, NdArray, PeeklensFile } from './reader';

export interface BlockInfo {
  name: string;
  shape: number[];
  kind: string;
  n_features: number;
}

export interface FitMeta {
  rank: number;
  names: string[];
  F: string;
  W: string[];
  objective: string;
  errors: number[];
  rmse: number;
  n_iter: number;
  converged: boolean;
  seconds: number;
  settings: Record<string, unknown>;
  blocks: BlockInfo[];
}

function asMatrix(a: NdArray, what: string): Matrix {
  if (a.shape.length !== 2) {
    throw new FileFormatError(`${what} should be a matrix, got shape (${a.shape})`);
  }
  return { rows: a.shape[0], cols: a.shape[1], data: a.data };
}

function f32(a: ArrayLike<number>): Float32Array {
  return a instanceof Float32Array ? a : Float32Array.from(a);
}

export class Results {
  /** Swept ranks (one for a Factorization, none for Activations / Spectrum). */
  readonly ranks: number[];

  private constructor(
    readonly file: PeeklensFile,
    readonly name: string
  ) {
    const m = file.meta;
    if (file.type === 'Sweep') {
      this.ranks = Object.keys(m.fits || {})
        .map(Number)
        .sort((a, b) => a - b);
    } else if (file.type === 'Factorization') {
      this.ranks = [Number(m.fit.rank)];
    } else if (file.type === 'Activations' || file.type === 'Spectrum') {
      this.ranks = [];
    } else {
      throw new FileFormatError(`${name}: unknown object type ${JSON.stringify(file.type)}`);
    }
  }

  static async open(source: ByteSource, name: string): Promise<Results> {
    return new Results(await PeeklensFile.open(source, name), name);
  }

  get type(): string {
    return this.file.type;
  }

  get meta(): Record<string, any> {
    return this.file.meta;
  }

  /** Whether the file holds factorizations (Sweep or Factorization). */
  get hasFits(): boolean {
    return this.ranks.length > 0;
  }

  fit(rank: number): FitMeta {
    const m = this.file.meta;
    const f = this.type === 'Sweep' ? m.fits?.[String(rank)] : m.fit;
    if (!f || (this.type === 'Factorization' && Number(f.rank) !== rank)) {
      throw new FileFormatError(`${this.name} has no factorization at rank ${rank}; ranks are ${this.ranks}`);
    }
    return f as FitMeta;
  }

  /** Block descriptions (input channels and layers), from the first fit or the Activations. */
  get blocks(): BlockInfo[] {
    if (this.hasFits) {
      const f = this.fit(this.ranks[0]);
      return f.blocks.map((b, i) => ({ ...b, name: f.names[i] }));
    }
    if (this.type === 'Activations') {
      return (this.meta.blocks as BlockInfo[]).map((b, i) => ({ ...b, name: this.meta.names[i] }));
    }
    return [];
  }

  get inputBlocks(): BlockInfo[] {
    return this.blocks.filter(b => b.kind === 'input');
  }

  get layerBlocks(): BlockInfo[] {
    return this.blocks.filter(b => b.kind === 'layer');
  }

  private get shared(): Record<string, any> {
    return this.type === 'Factorization' ? this.meta.fit : this.meta;
  }

  /** Number of samples. */
  get nSamples(): number {
    const shapes = this.meta.shapes || {};
    if (this.hasFits) {
      return shapes[this.fit(this.ranks[0]).F]?.[0] ?? 0;
    }
    if (this.type === 'Activations') {
      return shapes[this.meta.arrays[0]]?.[1] ?? 0;
    }
    return 0;
  }

  /** Per-sample labels (display only), or null. */
  async labels(): Promise<Float64Array | null> {
    const key = this.shared.labels;
    if (!key) {
      return null;
    }
    const a = await this.file.array(key);
    return Float64Array.from(a.data);
  }

  /** Input-channel matrices (pixels x samples) kept in the file, or null. */
  async inputs(): Promise<{ blocks: BlockInfo[]; data: Matrix[] } | null> {
    const blocks = this.inputBlocks;
    if (this.type === 'Activations') {
      if (!blocks.length) {
        return null;
      }
      const names: string[] = this.meta.names;
      const data = await Promise.all(
        blocks.map(async b => asMatrix(await this.file.array(this.meta.arrays[names.indexOf(b.name)]), b.name))
      );
      return { blocks, data };
    }
    const inp = this.shared.inputs;
    if (!inp || !blocks.length) {
      return null;
    }
    const data = await Promise.all(
      blocks.map(async b => {
        const i = (inp.names as string[]).indexOf(b.name);
        if (i < 0) {
          throw new FileFormatError(`${this.name}: input ${JSON.stringify(b.name)} is missing from the inputs`);
        }
        return asMatrix(await this.file.array(inp.arrays[i]), b.name);
      })
    );
    return { blocks, data };
  }

  async F(rank: number): Promise<Matrix> {
    return asMatrix(await this.file.array(this.fit(rank).F), `F at rank ${rank}`);
  }

  async loadings(rank: number, block: string): Promise<Matrix> {
    const f = this.fit(rank);
    const i = f.names.indexOf(block);
    if (i < 0) {
      throw new FileFormatError(`${this.name}: no block named ${JSON.stringify(block)} at rank ${rank}`);
    }
    return asMatrix(await this.file.array(f.W[i]), `loadings of ${JSON.stringify(block)}`);
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
        blockErrors[b * ranks.length + j] = i >= 0 ? f.errors[i] : NaN;
      });
    });
    return { ranks, rmse, blockNames: names.slice(), blockErrors };
  }

  /** The latent image gallery of one rank: latent images, top inputs and class histograms. */
  async galleryData(rank: number, topK = 8, histK = 50): Promise<GalleryData | null> {
    const inputs = this.inputBlocks;
    if (!inputs.length) {
      return null;
    }
    const [F, Ws, inp, labels] = await Promise.all([
      this.F(rank),
      Promise.all(inputs.map(b => this.loadings(rank, b.name))),
      this.inputs(),
      this.labels()
    ]);
    const latents = latentImages(Ws, inputs[0].shape);
    let topInputStack: ImageStack | null = null;
    const k = Math.min(topK, F.rows);
    if (inp) {
      const top = topInputs(F, k);
      topInputStack = displayRange(inputImages(inp.data, inputs[0].shape, top));
    }
    let histograms: Int32Array | null = null;
    let nClasses = 0;
    if (labels) {
      const hist = classHistograms(F, labels, histK);
      histograms = hist.counts;
      nClasses = hist.nClasses;
    }
    const allW = await Promise.all(this.fit(rank).names.map(n => this.loadings(rank, n)));
    return {
      rank,
      latents,
      topInputs: topInputStack,
      topK: topInputStack ? k : 0,
      histograms,
      nClasses,
      strength: factorStrength(F, allW)
    };
  }

  /** Latent images only (reads just the input-side loadings), for side-by-side comparisons. */
  async latentGallery(rank: number): Promise<GalleryData | null> {
    const inputs = this.inputBlocks;
    if (!inputs.length) {
      return null;
    }
    const Ws = await Promise.all(inputs.map(b => this.loadings(rank, b.name)));
    return { rank, latents: latentImages(Ws, inputs[0].shape), topInputs: null, topK: 0, histograms: null, nClasses: 0 };
  }

  /** Neuron x factor loadings of every layer at one rank. */
  async heatmapData(rank: number, threshold = 0.01): Promise<HeatmapData> {
    const layers: LayerData[] = await Promise.all(
      this.layerBlocks.map(async b => {
        const O = await this.loadings(rank, b.name);
        return {
          name: b.name,
          shape: b.shape,
          loadings: f32(O.data),
          unusedShare: utilisation(O, b.shape, threshold).unusedShare
        };
      })
    );
    return { rank, layers, threshold };
  }

  /** Singular values per block (Spectrum files), or null. */
  async spectrumData(network?: string): Promise<SpectrumData | null> {
    if (this.type !== 'Spectrum') {
      return null;
    }
    const names: string[] = this.meta.names;
    const series = await Promise.all(
      names.map(async (n, i) => ({
        network: network ?? this.name,
        layer: n,
        values: f32((await this.file.array(this.meta.values[i])).data)
      }))
    );
    return { series };
  }

  /** The first `count` input images with their labels (Activations files). */
  async sampleImages(count = 32): Promise<{ images: ImageStack; labels: Float64Array | null } | null> {
    const inp = await this.inputs();
    if (!inp) {
      return null;
    }
    const n = Math.min(count, inp.data[0].cols);
    const idx = Array.from({ length: n }, (_, i) => i);
    const labels = await this.labels();
    return {
      images: displayRange(inputImages(inp.data, inp.blocks[0].shape, idx)),
      labels: labels ? labels.subarray(0, n) : null
    };
  }
}
