/**
 * One drawn view per rank, kept in detached elements: a slider move swaps the element in
 * instead of redrawing, and the ranks not yet shown are drawn while the browser is idle.
 */
import type { ViewHandle } from "../views/types";

interface Drawn<S> {
  box: HTMLElement;
  handle: ViewHandle<S> | null;
  state: string;
}

const idle: (cb: () => void) => void =
  typeof (globalThis as any).requestIdleCallback === "function"
    ? (cb) => (globalThis as any).requestIdleCallback(cb, { timeout: 500 })
    : (cb) => setTimeout(cb, 30);

export class RankedViews<S> {
  private drawn = new Map<number, Drawn<S>>();
  private current: number | null = null;
  private alive = true;
  private drawMs: Record<number, number> = {};

  constructor(
    private el: HTMLElement,
    private draw: (box: HTMLElement, rank: number, state: S) => ViewHandle<S> | null,
  ) {}

  private get(rank: number, state: S): Drawn<S> {
    let d = this.drawn.get(rank);
    if (!d) {
      const box = this.el.ownerDocument.createElement("div");
      box.className = "pl-rank-view";
      box.dataset.rank = String(rank);
      const t0 = performance.now();
      d = { box, handle: this.draw(box, rank, state), state: JSON.stringify(state) };
      this.drawMs[rank] = Math.round((performance.now() - t0) * 100) / 100;
      this.el.dataset.drawMs = JSON.stringify(this.drawMs); // how long each rank took to draw the first time
      this.drawn.set(rank, d);
    }
    return d;
  }

  /** Show the view of `rank` in `state` (drawn now if it was not drawn before). */
  show(rank: number, state: S): void {
    const d = this.get(rank, state);
    const key = JSON.stringify(state);
    if (d.state !== key) {
      d.handle?.update(state);
      d.state = key;
    }
    if (this.current !== rank || d.box.parentElement !== this.el) {
      this.el.replaceChildren(d.box);
      this.current = rank;
    }
  }

  /** Draw the other ranks in idle time, one per idle slot. */
  prerender(ranks: number[], stateFor: (rank: number) => S): void {
    const todo = ranks.filter((r) => !this.drawn.has(r));
    const step = () => {
      if (!this.alive) return;
      const r = todo.shift();
      if (r === undefined) return;
      if (!this.drawn.has(r)) this.get(r, stateFor(r));
      idle(step);
    };
    idle(step);
  }

  has(rank: number): boolean {
    return this.drawn.has(rank);
  }

  /** Forget every drawn view (data changed). */
  reset(): void {
    this.drawn.forEach((d) => d.handle?.destroy());
    this.drawn.clear();
    this.current = null;
    this.el.replaceChildren();
  }

  destroy(): void {
    this.alive = false;
    this.reset();
  }
}
