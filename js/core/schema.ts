/**
 * The results schema, version 2: the TypeScript copy of `peeklens.schema` (read its docstring for
 * the meaning of every field). A payload is a JSON `meta` plus named arrays; every front end reads
 * results through a {@link Source} of it: a `.peeklens` zip (lab document, offline report) or the
 * synced traits of a widget.
 */

export const FORMAT_NAME = "peeklens";
/** The newest version this code reads and the one `peeklens.schema` writes. */
export const FORMAT_VERSION = 2;
/** The versions this code reads (1: no `display`, no `dtypes`, no metadata digest). */
export const READABLE_VERSIONS = [1, 2];
/** The zip member holding the SHA-256 (hex) of the exact bytes of `meta.json` (version 2 on). */
export const META_DIGEST = "meta.json.sha256";

/** A problem with a results payload: not a peeklens file, truncated, tampered or too new. */
export class FileFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FileFormatError";
  }
}

/** A numeric array in C order. */
export type NumArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Uint32Array;

export interface NdArray {
  dtype: string;
  shape: number[];
  data: NumArray;
}

/** Per-block description: `kind` is "input" (an input channel) or "layer". */
export interface BlockInfo {
  name: string;
  shape: number[];
  kind: string;
  n_features: number;
  /** A signed block (semi-NMF loadings of both signs); absent in older files (then see `settings.signed`). */
  signed?: boolean;
}

/** One factorization (a *fit* of the schema). */
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
  blocks: Omit<BlockInfo, "name">[];
  /** Tensor model only: block position -> key of its spatial factor (positions x rank). */
  spatial?: Record<string, string> | null;
  /** What the factors of some layers mean (`pl.explain`); absent in files without it. */
  interpretation?: InterpretationMeta[] | null;
}

/**
 * One explained layer of a fit (`peeklens.interpret.Explanation`): keys of arrays with one row per
 * explained factor (`factors`), or null when that part was not computed.
 */
export interface InterpretationMeta {
  layer: string;
  rank: number;
  /** Attribution method ("spatial", "guided_backprop", ...) or null. */
  method: string | null;
  value_range: [number, number];
  top_k: number;
  interrupted: boolean;
  settings?: Record<string, unknown>;
  /** (m,) int64: the explained factors. */
  factors: string;
  /** (m, n, H, W, C) uint8, C 1 or 3: the maximizing inputs as pictures (0..255 over value_range). */
  maximized: string | null;
  /** (m, n) float32 and (m,) float32: the factor's activation of them and of its top captured input. */
  maximized_scores: string | null;
  reference: string | null;
  /** (m, top_k) int64: the attributed samples (each factor's top inputs). */
  samples: string | null;
  /** (m, top_k, H, W) uint8: heatmaps divided by their maximum `heat_scale` (m, top_k) float32, times 255. */
  heatmaps: string | null;
  heat_scale: string | null;
  /** (m, top_k) float32: the factor's activation of each attributed sample. */
  scores: string | null;
  /** (m, top_k, 4) int32: top, left, height, width of the hottest region. */
  boxes: string | null;
}

/** The samples the views show (thumbnails), see `peeklens.schema`. */
export interface DisplayMeta {
  top_k: number;
  /** Key of the sorted sample indices whose images are kept. */
  samples: string | null;
  /** Keys, one per input channel, of (pixels x samples.length) float32. */
  images: string[];
  /** Minimum and maximum of the full input blocks: thumbnails show (v - lo) / (hi - lo). */
  value_range: [number, number] | null;
  class_names: string[] | null;
  /** Token samples: one text per entry of `samples`, the token in brackets with context (schema.token_texts). */
  text?: string[] | null;
  /** Image-patch token samples: keys of the patch crops (n, h, w, C), their boxes (n, 4) and grid cells (n, 2). */
  patches?: { images: string; boxes: string; cells: string } | null;
}

/** The *sample* fields: labels, full inputs (files only, optional) and the display section. */
export interface SampleMeta {
  labels: string | null;
  inputs: { names: string[]; arrays: string[] } | null;
  display?: DisplayMeta | null;
}

/**
 * The network's label-free training-quality score (`pl.quality`): the optional `quality` section of
 * a Sweep or Factorization payload. Non-finite numbers are stored as null.
 */
export interface QualityMeta {
  score: number | null;
  components: Record<string, number | null>;
  /** The components the score is made of. */
  used: string[];
  /** Per used component its standardized term (higher = better trained); the score is their mean. */
  terms?: Record<string, number | null>;
  layers?: string[];
  n_samples?: number;
  /** Hash of the test inputs and layers: equal fingerprints mean comparable scores. */
  fingerprint?: string;
  /** What the calibration study measured (held-out `rho`, `rho_ci`, `tau`, `tau_ci`, `seed_noise`...). */
  calibration?: Record<string, unknown>;
  seconds?: number;
}

export interface Meta extends Partial<SampleMeta> {
  format: string;
  format_version: number;
  type: "Sweep" | "Factorization" | "Activations" | "Spectrum" | string;
  peeklens?: string;
  torch?: string;
  created?: string;
  shapes?: Record<string, number[]>;
  /** NumPy descr per key (e.g. "<f4"); absent in version 1 files. */
  dtypes?: Record<string, string>;
  sha256?: Record<string, string>;
  // Sweep
  ranks?: number[];
  fits?: Record<string, FitMeta>;
  interrupted?: boolean;
  // Factorization
  fit?: FitMeta & SampleMeta;
  // Sweep / Factorization, optional
  quality?: QualityMeta | null;
  // Activations / Spectrum
  names?: string[];
  blocks?: Omit<BlockInfo, "name">[];
  arrays?: string[];
  values?: string[];
  entropy_rank?: number[];
  stable_rank?: number[];
  method?: string[];
  [key: string]: unknown;
}

/** Check `format` and `format_version`; returns the version. */
export function checkHeader(meta: unknown, name: string): number {
  const m = meta as Meta | null;
  if (!m || typeof m !== "object" || Array.isArray(m)) {
    throw new FileFormatError(`${name}: meta.json is not an object: not a peeklens file`);
  }
  if (m.format !== FORMAT_NAME) {
    throw new FileFormatError(`${name} is not a peeklens results file (format ${JSON.stringify(m.format)})`);
  }
  const version = m.format_version;
  if (!Number.isInteger(version)) {
    throw new FileFormatError(`${name}: format_version is missing or not an integer`);
  }
  if (version > FORMAT_VERSION) {
    throw new FileFormatError(
      `${name} uses format version ${version}, written by peeklens ${m.peeklens}; this viewer reads ` +
        `format ${FORMAT_VERSION}. Upgrade peeklens to read it`,
    );
  }
  if (!READABLE_VERSIONS.includes(version)) {
    throw new FileFormatError(`${name}: unknown format version ${version}`);
  }
  return version;
}

/** Read access to one payload: its metadata and its arrays by key. */
export interface Source {
  /** Shown in messages (a file name, "widget"). */
  readonly name: string;
  readonly meta: Meta;
  /** The array stored under `key` (rejects with FileFormatError when missing or damaged). */
  getArray(key: string): Promise<NdArray>;
}
