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
