/** What the widget glue needs from an anywidget model (a real one, or the fake in the tests). */
export interface WidgetModel {
  get(name: string): any;
  set(name: string, value: unknown): void;
  save_changes(): void;
  on(event: string, callback: (...args: any[]) => void): void;
  off(event?: string | null, callback?: ((...args: any[]) => void) | null): void;
}

export interface RenderProps {
  model: WidgetModel;
  el: HTMLElement;
}

/** A binary trait (DataView from the kernel or the saved notebook, or any buffer) as float32. */
export function f32(v: unknown): Float32Array {
  if (v == null) return new Float32Array(0);
  if (v instanceof Float32Array) return v;
  let buf: ArrayBuffer, off = 0, len: number;
  if (ArrayBuffer.isView(v)) {
    buf = v.buffer as ArrayBuffer; off = v.byteOffset; len = v.byteLength;
  } else if (v instanceof ArrayBuffer) {
    buf = v; len = v.byteLength;
  } else {
    throw new TypeError("peeklens: expected a binary float32 buffer");
  }
  if (len % 4 !== 0) throw new TypeError(`peeklens: buffer of ${len} bytes is not float32`);
  if (off % 4 === 0) return new Float32Array(buf, off, len / 4);
  return new Float32Array(buf.slice(off, off + len)); // misaligned: copy
}

/** A binary trait as int32 (e.g. class histograms); null stays null. */
export function i32(v: unknown): Int32Array | null {
  if (v == null) return null;
  const f = f32(v); // same alignment rules; reinterpret the bytes
  return new Int32Array(f.buffer, f.byteOffset, f.length);
}

/** Listen to several traits; returns the function that stops listening. */
export function listen(model: WidgetModel, names: string[], cb: () => void): () => void {
  const evs = names.map((n) => `change:${n}`);
  evs.forEach((e) => model.on(e, cb));
  return () => evs.forEach((e) => model.off(e, cb));
}

/** Time a redraw and expose it on the element (data-redraw-ms) for tests and curious users. */
export function timed(el: HTMLElement, draw: () => void): void {
  const t0 = performance.now();
  draw();
  el.dataset.redrawMs = (performance.now() - t0).toFixed(2);
}
