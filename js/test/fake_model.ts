/** A fake anywidget model: traits in a map, Backbone-like change events, counted save_changes. */
import type { WidgetModel } from "../widgets/_model";

export class FakeModel implements WidgetModel {
  state: Record<string, any>;
  saves = 0;
  private handlers = new Map<string, Set<(...a: any[]) => void>>();

  constructor(state: Record<string, any>) {
    this.state = { ...state };
  }
  get(name: string) {
    return this.state[name];
  }
  set(name: string, value: unknown) {
    const old = this.state[name];
    this.state[name] = value;
    if (old !== value) this.handlers.get(`change:${name}`)?.forEach((h) => h(this, value));
  }
  save_changes() {
    this.saves++;
  }
  on(event: string, cb: (...a: any[]) => void) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event)!.add(cb);
  }
  off(event?: string | null, cb?: ((...a: any[]) => void) | null) {
    if (!event) return this.handlers.clear();
    if (!cb) return this.handlers.delete(event);
    this.handlers.get(event)?.delete(cb);
  }
  listeners(): number {
    let n = 0;
    this.handlers.forEach((s) => (n += s.size));
    return n;
  }
}

/** float32 values as a DataView, as ipywidgets hands binary buffers to the front end. */
export function dv(values: ArrayLike<number>, byteOffset = 0): DataView {
  const buf = new ArrayBuffer(byteOffset + values.length * 4);
  const view = new DataView(buf, byteOffset, values.length * 4);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
  return view;
}

export function dvInt(values: ArrayLike<number>): DataView {
  const buf = new ArrayBuffer(values.length * 4);
  const view = new DataView(buf);
  for (let i = 0; i < values.length; i++) view.setInt32(i * 4, values[i], true);
  return view;
}

/** Deterministic pseudo-random values in [0, 1). */
export function rand(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = s / 2 ** 32;
  }
  return out;
}

/** Let pending promise work (derivations) finish. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setTimeout(r, 0));
}

function bytesOf(a: Float32Array | Float64Array | BigInt64Array): DataView {
  return new DataView(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * A schema payload (peeklens.schema, version 2) of a small sweep, as a widget receives it: `meta`
 * and `arrays` (key -> DataView). Input 4x4 (one channel), layers "relu" (2x3x3) and "fc" (4),
 * `n` samples with labels 0..2, every sample kept in the display section.
 */
export function sweepPayload(ranks: number[], n = 20, topK = 2): { meta: any; arrays: Record<string, DataView> } {
  const names = ["input:0", "relu", "fc"];
  const blocks = [
    { kind: "input", shape: [4, 4], n_features: 16 },
    { kind: "layer", shape: [2, 3, 3], n_features: 18 },
    { kind: "layer", shape: [4], n_features: 4 },
  ];
  const arrays: Record<string, DataView> = {};
  const shapes: Record<string, number[]> = {};
  const dtypes: Record<string, string> = {};
  const put = (key: string, a: Float32Array | BigInt64Array, shape: number[]) => {
    arrays[key] = bytesOf(a);
    shapes[key] = shape;
    dtypes[key] = a instanceof Float32Array ? "<f4" : "<i8";
    return key;
  };
  const fits: Record<string, any> = {};
  for (const r of ranks) {
    fits[String(r)] = {
      rank: r,
      names,
      F: put(`r${r}.F`, rand(n * r, r), [n, r]),
      W: blocks.map((b, i) => put(`r${r}.W.${i}`, rand(b.n_features * r, 10 * r + i), [b.n_features, r])),
      objective: "none",
      errors: [0.5, 0.4, 0.3].map((e) => e / r),
      rmse: 0.1 / r,
      n_iter: 5,
      converged: true,
      seconds: 0.1,
      settings: { solver: "mu" },
      blocks,
    };
  }
  const labels = put(
    "labels",
    BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 3)),
    [n],
  );
  const samples = put(
    "display.samples",
    BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
    [n],
  );
  const image = put("display.image.0", rand(16 * n, 99), [16, n]);
  const meta = {
    format: "peeklens",
    format_version: 2,
    type: "Sweep",
    ranks,
    requested: ranks,
    interrupted: false,
    fits,
    info: {},
    labels,
    inputs: null,
    display: { top_k: topK, samples, images: [image], value_range: [0, 1], class_names: ["a", "b", "c"] },
    shapes,
    dtypes,
  };
  return { meta, arrays };
}
