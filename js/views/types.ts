/**
 * Plain data the peeklens views draw. No widget or kernel types here: the anywidget glue
 * (js/widgets) and the JupyterLab document (js/lab) both build these from binary buffers.
 *
 * Conventions: matrices are row-major Float32Array; images are channels-last
 * (height x width x channels) with channels 1 (grey) or 3 (RGB) and values in [0, 1].
 */

/** `count` images of height x width x channels, one after another. */
export interface ImageStack {
  data: Float32Array;
  count: number;
  height: number;
  width: number;
  channels: number;
}

/** Errors of a rank sweep (rank explorer). */
export interface RankExplorerData {
  /** Swept ranks, increasing. */
  ranks: number[];
  /** Overall RMSE per rank (same order as `ranks`). */
  rmse: Float32Array;
  /** Names of the blocks (input channels and layers). */
  blockNames: string[];
  /** Relative error per block and rank: blocks x ranks, row-major. */
  blockErrors: Float32Array;
  title?: string;
}

export interface RankState {
  /** The current rank (one of `ranks`). */
  rank: number;
}

export interface RankCallbacks {
  onRank?: (rank: number) => void;
}

/** One factorization's latent images (paper Fig. 2). */
export interface GalleryData {
  /** Number of factors (tiles). */
  rank: number;
  /** Input-side loadings folded to images, count = rank, each scaled to [0, 1]. */
  latents: ImageStack;
  /** The top-k inputs of every factor, count = rank * topK (factor-major), or null. */
  topInputs: ImageStack | null;
  topK: number;
  /** The sample index of every top input (rank * topK, factor-major, like `topInputs`), or null. */
  topSamples?: Int32Array | null;
  /** Token samples: the text of every top sample (rank * topK, like `topSamples`), token in brackets. */
  topTexts?: string[] | null;
  /** Image-patch token samples: each top sample's patch with its neighbours (rank * topK crops), the patch's
   * box in its crop (top, left, height, width; -1 without a patch) and its cell (row, col) in the patch grid. */
  topPatches?: { images: ImageStack; boxes: Int32Array; cells: Int32Array } | null;
  /** Label counts of each factor's top inputs: rank x nClasses, or null without labels. */
  histograms: Int32Array | null;
  nClasses: number;
  /** Optional class names (default: the class index). Shown as text. */
  classNames?: string[];
  /** Optional share of the model energy per factor (sums to 1). */
  strength?: Float32Array | null;
  title?: string;
  /** Optional: what the factors of one layer mean (maximized images, attribution heatmaps), see js/core/interpret.ts. */
  interpretation?: GalleryInterpretation | null;
}

/** One layer's factor interpretation, aligned with a gallery's tiles and top-input thumbnails. */
export interface GalleryInterpretation {
  /** The explained layer, and every explained layer of this fit. */
  layer: string;
  layers: string[];
  /** Attribution method, or null without heatmaps. */
  method: string | null;
  /** Maximized images per factor (count = rank * nImages, factor-major, values in [0, 1]), or null. */
  maximized: ImageStack | null;
  nImages: number;
  /** Per factor: 1 when it was explained (an interrupted run leaves some out). */
  explained: Uint8Array;
  /** Per factor: the factor's activation of its (first) maximized image relative to its top input; NaN when unknown. */
  relScore: Float32Array;
  /** Heatmaps of the thumbnails (count = rank * topK, same order as `topInputs`, values in [0, 1]), or null. */
  heat: ImageStack | null;
  /** Per thumbnail: 1 when it has a heatmap. */
  hasHeat: Uint8Array;
  /** Per thumbnail: top, left, height, width of the hottest region (input pixels), or null. */
  boxes: Int32Array | null;
  interrupted: boolean;
}

export interface FactorState {
  /** The selected factor, 0-based; -1 for none. */
  factor: number;
}

export interface FactorCallbacks {
  onFactor?: (factor: number) => void;
}

/** One layer's loadings O_j. */
export interface LayerData {
  name: string;
  /** Per-sample shape of the layer: [C, H, W], [H, W] or [N]. */
  shape: number[];
  /** neurons x rank, row-major, raw loadings (non-negative unless `signed`; channels x rank with `spatial`). */
  loadings: Float32Array;
  /** Share of neurons whose loadings are negligible on every factor (computed here when absent). */
  unusedShare?: number;
  /**
   * Tensor model only (a layer of shape [C, H, W] fitted as a CP tensor): its spatial factor,
   * positions (H·W) x rank, row-major; `loadings` is then the channel factor (C x rank), and a
   * neuron's loading is the product of its channel's and its position's.
   */
  spatial?: Float32Array;
  /** A signed block (semi-NMF): loadings of both signs, drawn with the diverging colour map around 0. */
  signed?: boolean;
}

/** Neuron heatmaps of one factorization (paper Fig. 9). */
export interface HeatmapData {
  rank: number;
  layers: LayerData[];
  /** A neuron is negligible when below threshold * (layer maximum) on every factor; default 0.01. */
  threshold?: number;
}

/** One line of the spectrum plot. */
export interface SpectrumSeries {
  network: string;
  layer: string;
  /** Singular values, decreasing. */
  values: Float32Array;
  /** Optional entropy effective rank of the layer (exp of the entropy of σ / Σσ); drawn as a marker. */
  entropyRank?: number;
}

export interface SpectrumData {
  series: SpectrumSeries[];
  title?: string;
}

/** One network of a comparison. */
export interface CompareNetwork {
  name: string;
  ranks: number[];
  rmse: Float32Array;
  /** Latent images per rank (same order as `ranks`); may be empty. */
  galleries: GalleryData[];
  /** The network's quality score (the schema's `quality` section), if measured. */
  quality?: NetworkQuality | null;
}

/** A network's label-free quality score, as the compare view draws it. */
export interface NetworkQuality {
  score: number;
  /** The components the score is made of, in order, with their raw values. */
  components: { name: string; value: number; term: number | null }[];
  /** Hash of the test inputs and layers (equal = comparable scores); "" if unknown. */
  fingerprint: string;
  /** Held-out Spearman rho of the score against test accuracy, with its 95 % interval. */
  rho: number | null;
  rhoCI: [number, number] | null;
  tau: number | null;
  tauCI: [number, number] | null;
  /** Which training regimes the rho was measured on. */
  heldOut: string;
  /** Score differences up to this are within the seed noise (calibration), or null. */
  seedNoise: number | null;
}

export interface CompareData {
  networks: CompareNetwork[];
  spectra: SpectrumData | null;
  /** Seed-noise threshold for "within noise" (default: the networks' calibrated `seedNoise`). */
  noise?: number | null;
}

/** What every render function returns. */
export interface ViewHandle<S> {
  /** Apply a new state (cheap: no re-layout of the data). */
  update(state: S): void;
  /** Remove everything the view added and its listeners. */
  destroy(): void;
}
