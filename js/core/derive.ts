/**
 * Views derived from a factorization, computed in the browser by every front end (widgets, lab
 * document, offline report).
 *
 * TypeScript equivalents of `peeklens.views` (latent_images, top_inputs, input_images,
 * class_histograms, spatial_maps, utilisation, factor_strength); js/test/core.test.ts compares them
 * with the Python functions on files written by `pl.save`. Matrices are row-major: a loadings matrix
 * is (features x rank), F is (samples x rank), an input block is (pixels x samples).
 */
import type { ImageStack } from "../views/types";

/** A row-major 2-D matrix. */
export interface Matrix {
  rows: number;
  cols: number;
  data: ArrayLike<number>;
}

/** Height and width of the image a per-sample shape folds into: [C,H,W] or [H,W] -> (H, W); [N] -> (1, N). */
export function imageHW(shape: number[]): [number, number] {
  if (shape.length >= 2) {
    return [shape[shape.length - 2], shape[shape.length - 1]];
  }
  return [1, shape[0] ?? 1];
}

/**
 * Stack per-channel (count x pixels) matrices into images: RGB for three channels, grey for one,
 * the channel mean otherwise (as `peeklens.views._to_image`).
 */
function toImages(chans: Float32Array[], count: number, pixels: number, h: number, w: number): ImageStack {
  if (chans.length === 3) {
    const out = new Float32Array(count * pixels * 3);
    for (let i = 0; i < count; i++) {
      for (let p = 0; p < pixels; p++) {
        for (let c = 0; c < 3; c++) {
          out[(i * pixels + p) * 3 + c] = chans[c][i * pixels + p];
        }
      }
    }
    return { data: out, count, height: h, width: w, channels: 3 };
  }
  if (chans.length === 1) {
    return { data: chans[0], count, height: h, width: w, channels: 1 };
  }
  const out = new Float32Array(count * pixels);
  for (const ch of chans) {
    for (let i = 0; i < out.length; i++) {
      out[i] += ch[i] / chans.length;
    }
  }
  return { data: out, count, height: h, width: w, channels: 1 };
}

/**
 * The input-side loadings P_i[:, r] folded back into images, one per factor (paper Fig. 2);
 * with `normalize` every factor's image is scaled to [0, 1] by its maximum over channels.
 */
export function latentImages(loadings: Matrix[], shape: number[], normalize = true): ImageStack {
  const [h, w] = imageHW(shape);
  const rank = loadings[0].cols;
  const pixels = loadings[0].rows;
  const chans = loadings.map((W) => {
    const t = new Float32Array(rank * pixels);
    for (let p = 0; p < pixels; p++) {
      for (let r = 0; r < rank; r++) {
        t[r * pixels + p] = W.data[p * rank + r];
      }
    }
    return t;
  });
  const img = toImages(chans, rank, pixels, h, w);
  if (normalize) {
    const per = pixels * img.channels;
    for (let r = 0; r < rank; r++) {
      let peak = -Infinity;
      for (let i = r * per; i < (r + 1) * per; i++) {
        peak = Math.max(peak, img.data[i]);
      }
      for (let i = r * per; i < (r + 1) * per; i++) {
        img.data[i] = peak > 0 ? img.data[i] / peak : 0;
      }
    }
  }
  return img;
}

/** Indices of the `k` samples that load most on each factor: (rank x k) row-major, strongest first. */
export function topInputs(F: Matrix, k: number): Int32Array {
  const n = F.rows;
  const rank = F.cols;
  k = Math.min(Math.max(Math.floor(k), 1), n);
  const out = new Int32Array(rank * k);
  for (let r = 0; r < rank; r++) {
    // Partial selection: keep a sorted list of the best k (k is small).
    const best: number[] = [];
    for (let i = 0; i < n; i++) {
      const v = F.data[i * rank + r];
      if (best.length === k && v <= F.data[best[k - 1] * rank + r]) {
        continue;
      }
      let j = best.length;
      while (j > 0 && F.data[best[j - 1] * rank + r] < v) {
        j--;
      }
      best.splice(j, 0, i);
      if (best.length > k) {
        best.pop();
      }
    }
    out.set(best, r * k);
  }
  return out;
}

/** The input images of some samples (values as captured), from (pixels x samples) input blocks. */
export function inputImages(inputs: Matrix[], shape: number[], indices: ArrayLike<number>): ImageStack {
  const [h, w] = imageHW(shape);
  const pixels = inputs[0].rows;
  const n = inputs[0].cols;
  const m = indices.length;
  const chans = inputs.map((X) => {
    const t = new Float32Array(m * pixels);
    for (let j = 0; j < m; j++) {
      const s = indices[j];
      for (let p = 0; p < pixels; p++) {
        t[j * pixels + p] = X.data[p * n + s];
      }
    }
    return t;
  });
  return toImages(chans, m, pixels, h, w);
}

/**
 * The one thumbnail normalisation: `(v - lo) / (hi - lo)` clipped to [0, 1], where [lo, hi] is the
 * range of the full input blocks (the schema's `display.value_range`), in place.
 */
export function normaliseThumbnails(stack: ImageStack, range: [number, number] | null): ImageStack {
  if (!range) return stack;
  const [lo, hi] = range;
  if (!(hi > lo) || (lo === 0 && hi === 1)) return stack;
  const d = stack.data;
  for (let i = 0; i < d.length; i++) d[i] = Math.min(1, Math.max(0, (d[i] - lo) / (hi - lo)));
  return stack;
}

/** Minimum and maximum of some matrices (finite values only). */
export function valueRange(ms: Matrix[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const m of ms) {
    for (let i = 0; i < m.data.length; i++) {
      const v = m.data[i];
      if (Number.isFinite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
  }
  return Number.isFinite(lo) ? [lo, hi] : [0, 1];
}

/**
 * The `k` samples of `candidates` (sorted sample indices) with the largest `F[:, r]`, per factor:
 * (rank x k) row-major, strongest first, ties by index. With the schema's display samples as
 * candidates this is `topInputs(F, k)` for every `k <= display.top_k`, since the candidates hold
 * every factor's top samples.
 */
export function topInputsAmong(F: Matrix, candidates: ArrayLike<number>, k: number): Int32Array {
  const rank = F.cols;
  const m = candidates.length;
  k = Math.min(Math.max(Math.floor(k), 0), m);
  const out = new Int32Array(rank * k);
  const order = Array.from(candidates);
  for (let r = 0; r < rank; r++) {
    order.sort((a, b) => F.data[b * rank + r] - F.data[a * rank + r] || a - b);
    for (let j = 0; j < k; j++) out[r * k + j] = order[j];
  }
  return out;
}

/** Counts of the labels of each factor's top-`k` inputs: (rank x nClasses) row-major. */
export function classHistograms(
  F: Matrix,
  labels: ArrayLike<number>,
  k = 50,
  nClasses?: number,
): { counts: Int32Array; nClasses: number } {
  let maxLabel = -1;
  for (let i = 0; i < labels.length; i++) {
    maxLabel = Math.max(maxLabel, labels[i]);
  }
  const nc = nClasses ?? maxLabel + 1;
  const kk = Math.min(Math.max(Math.floor(k), 1), F.rows);
  const top = topInputs(F, kk);
  const counts = new Int32Array(F.cols * nc);
  for (let r = 0; r < F.cols; r++) {
    for (let j = 0; j < kk; j++) {
      const l = labels[top[r * kk + j]];
      if (l >= 0 && l < nc) {
        counts[r * nc + l]++;
      }
    }
  }
  return { counts, nClasses: nc };
}

/** Factor `factor`"s loadings on a layer folded to (C, H, W): C small maps (dense layers: (1, 1, N)). */
export function spatialMaps(
  O: Matrix,
  shape: number[],
  factor: number,
): { data: Float32Array; shape: [number, number, number] } {
  const v = new Float32Array(O.rows);
  for (let i = 0; i < O.rows; i++) {
    v[i] = O.data[i * O.cols + factor];
  }
  let s: [number, number, number];
  if (shape.length === 3) {
    s = [shape[0], shape[1], shape[2]];
  } else if (shape.length === 2) {
    s = [1, shape[0], shape[1]];
  } else {
    s = [1, 1, O.rows];
  }
  return { data: v, shape: s };
}

/**
 * A tensor block's neuron loadings (as `peeklens.nmf.tensor.tensor_loadings`): the Khatri-Rao
 * product of its channel factor C (channels x rank) and spatial factor S (positions x rank), row
 * `c * positions + p` = C[c, :] * S[p, :], so it reads like a matrix model's (C·H·W x rank) loadings.
 */
export function tensorLoadings(C: Matrix, S: Matrix): Matrix {
  const rank = C.cols;
  if (S.cols !== rank) {
    throw new Error(`channel factor has ${rank} columns but spatial factor ${S.cols}`);
  }
  const out = new Float32Array(C.rows * S.rows * rank);
  for (let c = 0; c < C.rows; c++) {
    for (let p = 0; p < S.rows; p++) {
      const o = (c * S.rows + p) * rank;
      for (let r = 0; r < rank; r++) {
        out[o + r] = C.data[c * rank + r] * S.data[p * rank + r];
      }
    }
  }
  return { rows: C.rows * S.rows, cols: rank, data: out };
}

/**
 * How much of a layer the factors use: a neuron is negligible when the magnitude of its loading on
 * every factor is below `threshold` times the layer's largest magnitude (|loading|: a signed block's
 * negative loadings count as used).
 */
export function utilisation(
  O: Matrix,
  shape: number[],
  threshold = 0.01,
): { unusedShare: number; unused: Uint8Array; unusedChannels: number[] | null } {
  let peak = -Infinity;
  for (let i = 0; i < O.rows * O.cols; i++) {
    peak = Math.max(peak, Math.abs(O.data[i]));
  }
  const unused = new Uint8Array(O.rows);
  let count = 0;
  for (let i = 0; i < O.rows; i++) {
    let m = -Infinity;
    for (let r = 0; r < O.cols; r++) {
      m = Math.max(m, Math.abs(O.data[i * O.cols + r]));
    }
    unused[i] = peak > 0 ? (m < threshold * peak ? 1 : 0) : 1;
    count += unused[i];
  }
  let unusedChannels: number[] | null = null;
  if (shape.length === 3) {
    unusedChannels = [];
    const per = shape[1] * shape[2];
    for (let c = 0; c < shape[0]; c++) {
      let all = true;
      for (let p = 0; p < per && all; p++) {
        all = unused[c * per + p] === 1;
      }
      if (all) {
        unusedChannels.push(c);
      }
    }
  }
  return { unusedShare: O.rows ? count / O.rows : 0, unused, unusedChannels };
}

/** Share of the model energy carried by each factor (sums to 1): ||F[:, r]|| * sqrt(sum_b ||W_b[:, r]||^2). */
export function factorStrength(F: Matrix, loadings: Matrix[]): Float32Array {
  const rank = F.cols;
  const fn = new Float64Array(rank);
  for (let i = 0; i < F.rows; i++) {
    for (let r = 0; r < rank; r++) {
      const v = F.data[i * rank + r];
      fn[r] += v * v;
    }
  }
  const wn = new Float64Array(rank);
  for (const W of loadings) {
    for (let i = 0; i < W.rows; i++) {
      for (let r = 0; r < rank; r++) {
        const v = W.data[i * rank + r];
        wn[r] += v * v;
      }
    }
  }
  const s = new Float64Array(rank);
  let total = 0;
  for (let r = 0; r < rank; r++) {
    s[r] = Math.sqrt(fn[r]) * Math.sqrt(wn[r]);
    total += s[r];
  }
  const out = new Float32Array(rank);
  for (let r = 0; r < rank; r++) {
    out[r] = total > 0 ? s[r] / total : s[r];
  }
  return out;
}
