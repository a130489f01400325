/**
 * The offline HTML report (`peeklens demo` / `peeklens study`): the same results document as the
 * JupyterLab extension, for every network embedded in the page, and a comparison of them all.
 *
 * The page (written by `peeklens.report`) holds each result's `.peeklens` bytes base64-encoded in
 * `<script type="application/x-peeklens" data-kind="sweep|spectrum" data-label="...">` elements;
 * they are read through the same in-memory source as any file (digests checked). No network.
 */
import { BufferSource, compareDataOf, PeeklensView, Results, ZipSource } from "../core/index";
import { renderCompare } from "../views/compare";
import { h } from "../views/shared";

interface Embedded {
  kind: string;
  label: string;
  results: Results;
}

function decode(b64: string): Uint8Array {
  const bin = atob(b64.replace(/\s/g, ""));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function errorBox(host: Element, what: string, err: unknown): void {
  const box = h("div", "pl-report-error", `${what}: ${(err as Error)?.message ?? err}`);
  host.appendChild(box);
}

/** Read every embedded result (failures shown where they happen, the others still drawn). */
export async function embedded(doc: Document = document): Promise<Embedded[]> {
  const out: Embedded[] = [];
  for (const el of Array.from(doc.querySelectorAll<HTMLScriptElement>('script[type="application/x-peeklens"]'))) {
    const label = el.dataset.label ?? "results";
    try {
      const source = await ZipSource.open(new BufferSource(decode(el.textContent ?? "")), label);
      out.push({ kind: el.dataset.kind ?? "sweep", label, results: new Results(source) });
    } catch (e) {
      errorBox(doc.getElementById("pl-report-networks") ?? doc.body, `cannot read ${label}`, e);
    }
  }
  return out;
}

/** Draw the report into the page: one document per network, then the comparison. */
export async function renderReport(doc: Document = document): Promise<void> {
  const all = await embedded(doc);
  const sweeps = all.filter((e) => e.kind === "sweep" && e.results.hasFits);
  const host = doc.getElementById("pl-report-networks");
  const views: PeeklensView[] = [];
  if (host) {
    sweeps.forEach((e, i) => {
      const det = h("details", "pl-report-network");
      det.open = i < 2;
      det.dataset.label = e.label;
      det.appendChild(h("summary", "", e.label));
      try {
        const view = new PeeklensView(e.results, { title: e.label, compare: false });
        det.appendChild(view.node);
        views.push(view);
      } catch (err) {
        errorBox(det, e.label, err);
      }
      host.appendChild(det);
    });
  }
  const cmpHost = doc.getElementById("pl-report-compare");
  if (cmpHost && all.length) {
    try {
      const data = await compareDataOf(
        all.map((e) => e.results),
        all.map((e) => e.label),
      );
      // the comparison view brings its own "save as PNG / SVG" buttons
      const body = h("div", "pl-lab-body");
      cmpHost.append(body);
      const ranks = data.networks.flatMap((n) => n.ranks);
      // the rank the networks' documents open at (10 when swept), so the first look matches them
      renderCompare(body, data, { rank: ranks.includes(10) ? 10 : ranks.length ? Math.min(...ranks) : 0 });
    } catch (err) {
      errorBox(cmpHost, "comparison", err);
    }
  }
  await Promise.all(views.map((v) => v.drawn));
  doc.body.dataset.plReady = "1";
}

function start(): void {
  renderReport().catch((e) => {
    errorBox(document.body, "peeklens report", e);
    document.body.dataset.plReady = "error";
  });
}

if (typeof document !== "undefined" && document.querySelector('script[type="application/x-peeklens"]')) {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
}
