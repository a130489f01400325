/** The quality score in the Compare view: ranking, "within noise" markers, the confidence note, no score = no panel. */
import { describe, expect, it } from "vitest";
import { compareDataOf } from "../core/document";
import { qualityOf } from "../core/quality";
import type { QualityMeta } from "../core/schema";
import { confidenceNote, networkColors, qualityRanking, renderCompare } from "../views/compare";
import type { CompareData, CompareNetwork, NetworkQuality } from "../views/types";
import * as compareWidget from "../widgets/compare";
import { resultsOf } from "../widgets/_source";
import { FakeModel, settle, sweepPayload } from "./fake_model";

const CAL = {
  held_out: "label noise, subsets",
  rho: 0.797,
  rho_ci: [0.555, 0.916],
  tau: 0.616,
  tau_ci: [0.39, 0.781],
  seed_noise: 0.5,
};

function section(score: number, fingerprint = "f00d", extra: Partial<QualityMeta> = {}): QualityMeta {
  return {
    score,
    components: { deep_stable_rank: 0.005 + score / 1000, mean_selectivity: 0.56, deep_error_decay: 0.8, other: 1 },
    used: ["deep_stable_rank", "mean_selectivity", "deep_error_decay"],
    terms: { deep_stable_rank: score, mean_selectivity: score / 2, deep_error_decay: -0.25 },
    layers: ["relu", "relu_1"],
    n_samples: 2000,
    fingerprint,
    calibration: CAL,
    seconds: 3,
    ...extra,
  };
}

function network(name: string, q: QualityMeta | null): CompareNetwork {
  return {
    name,
    ranks: [2, 3],
    rmse: new Float32Array([0.2, 0.1]),
    galleries: [],
    quality: qualityOf(q ? ({ quality: q } as any) : {}),
  };
}

function draw(data: CompareData): HTMLElement {
  const el = document.createElement("div");
  renderCompare(el, data, { rank: 2 });
  return el;
}

describe("qualityOf: the schema's quality section", () => {
  it("reads score, the used components in order, their terms and the calibration", () => {
    const q = qualityOf({ quality: section(1.25) } as any) as NetworkQuality;
    expect(q.score).toBe(1.25);
    expect(q.components.map((c) => c.name)).toEqual(["deep_stable_rank", "mean_selectivity", "deep_error_decay"]);
    expect(q.components[2]).toEqual({ name: "deep_error_decay", value: 0.8, term: -0.25 });
    expect(q.rho).toBeCloseTo(0.797);
    expect(q.rhoCI).toEqual([0.555, 0.916]);
    expect(q.seedNoise).toBe(0.5);
  });
  it("gives null without a section or without a finite score (null stands for NaN in files)", () => {
    expect(qualityOf({} as any)).toBeNull();
    expect(qualityOf({ quality: null } as any)).toBeNull();
    expect(qualityOf({ quality: { ...section(1), score: null } } as any)).toBeNull();
    expect(qualityOf({ quality: "bad" } as any)).toBeNull();
  });
});

describe("ranking and noise", () => {
  it("orders networks by score, best first, and flags every pair within the seed noise", () => {
    const data: CompareData = {
      networks: [network("low", section(-1)), network("high", section(2)), network("mid", section(1.7))],
      spectra: null,
    };
    const rk = qualityRanking(data);
    expect(rk.ranked.map((n) => n.name)).toEqual(["high", "mid", "low"]);
    expect(rk.noise).toBe(0.5); // the calibration's seed noise
    expect(rk.ties).toEqual([["high", "mid"]]);
    expect(rk.comparable).toBe(true);
    // an explicit threshold (Comparison.noise from Python) wins over the calibration's
    expect(qualityRanking({ ...data, noise: 3 }).ties).toEqual([
      ["high", "mid"],
      ["high", "low"],
      ["mid", "low"],
    ]);
    expect(qualityRanking({ ...data, noise: 0 }).ties).toEqual([]);
  });
  it("notices scores measured on different inputs or layers", () => {
    const rk = qualityRanking({
      networks: [network("a", section(1, "aaaa")), network("b", section(0, "bbbb"))],
      spectra: null,
    });
    expect(rk.comparable).toBe(false);
  });
});

describe("the ranked score panel in renderCompare", () => {
  it("draws rows best first with the network colours, a bar per component, the note and the noise marker", () => {
    const data: CompareData = {
      networks: [network("low", section(-1)), network("high", section(2)), network("mid", section(1.7))],
      spectra: null,
    };
    const el = draw(data);
    const rows = Array.from(el.querySelectorAll<SVGGElement>(".pl-quality-row"));
    expect(rows.map((r) => r.getAttribute("data-network"))).toEqual(["high", "mid", "low"]);
    const colors = networkColors(data);
    // the same colour as the network's RMSE curve and gallery swatch
    expect(rows[0].querySelector(".pl-swatch")?.getAttribute("fill")).toBe(colors.high);
    expect(rows[2].querySelector(".pl-swatch")?.getAttribute("fill")).toBe(colors.low);
    // score bar + one per component in every row
    expect(rows.every((r) => r.querySelectorAll(".pl-quality-bar").length === 4)).toBe(true);
    // a negative score's bar goes left of the zero line
    const lowBar = rows[2].querySelector<SVGRectElement>(".pl-quality-bar")!;
    const highBar = rows[0].querySelector<SVGRectElement>(".pl-quality-bar")!;
    expect(Number(lowBar.getAttribute("x"))).toBeLessThan(Number(highBar.getAttribute("x")));
    expect(rows[0].textContent).toContain("2.00");
    const marks = Array.from(el.querySelectorAll(".pl-quality-noise"));
    expect(marks.map((m) => [m.getAttribute("data-a"), m.getAttribute("data-b")])).toEqual([["high", "mid"]]);
    expect(marks[0].textContent).toContain("within noise");
    const note = el.querySelector(".pl-quality-confidence")?.textContent ?? "";
    expect(note).toContain("0.80 [0.56, 0.92]");
    expect(note).toContain("label noise, subsets");
    expect(el.querySelector(".pl-quality-noise-note")?.textContent).toContain("0.5");
    expect(el.querySelector(".pl-quality-warning")).toBeNull();
    // the panel comes before the RMSE chart
    const panel = el.querySelector(".pl-quality")!;
    const chart = el.querySelector(".pl-rmse-chart")!;
    expect(panel.compareDocumentPosition(chart) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();
  });
  it("is absent, without an error, when no network has a score", () => {
    const el = draw({ networks: [network("a", null), network("b", null)], spectra: null });
    expect(el.querySelector(".pl-quality")).toBeNull();
    expect(el.querySelectorAll(".pl-rmse-chart").length).toBe(1);
    expect(el.querySelector(".pl-lab-error")).toBeNull();
  });
  it("lists unscored networks and warns about incomparable scores", () => {
    const el = draw({
      networks: [network("a", section(1, "aaaa")), network("b", section(0, "bbbb")), network("c", null)],
      spectra: null,
    });
    expect(el.querySelectorAll(".pl-quality-row").length).toBe(2);
    expect(el.querySelector(".pl-quality")?.textContent).toContain("Not scored (no quality saved with the results): c");
    expect(el.querySelector(".pl-quality-warning")?.textContent).toContain("not comparable");
  });
  it("says so when the score is not calibrated", () => {
    expect(confidenceNote(qualityOf({ quality: section(1, "f", { calibration: {} }) } as any) ?? undefined)).toContain(
      "not calibrated",
    );
  });
});

describe("the score reaches the view through the document and the widget", () => {
  it("compareDataOf (lab document, report) reads each file's quality section", async () => {
    const withQ = sweepPayload([2, 3]);
    withQ.meta.quality = section(0.4);
    const without = sweepPayload([2, 3]);
    const data = await compareDataOf(
      [resultsOf(withQ.meta, withQ.arrays, "a"), resultsOf(without.meta, without.arrays, "b")],
      ["a", "b"],
    );
    expect(data.networks.map((n) => n.quality?.score ?? null)).toEqual([0.4, null]);
  });
  it("the Compare widget draws the panel from its networks' metadata and the noise trait", async () => {
    const net = (name: string, score: number) => {
      const p = sweepPayload([2, 3]);
      p.meta.quality = section(score);
      return { name, ...p };
    };
    const model = new FakeModel({
      rank: 2,
      networks: [net("a", 0.1), net("b", 1.0)],
      spectra: [],
      layers: null,
      noise: null,
    });
    const el = document.createElement("div");
    await compareWidget.default.render({ model, el });
    const order = () => Array.from(el.querySelectorAll(".pl-quality-row")).map((r) => r.getAttribute("data-network"));
    expect(order()).toEqual(["b", "a"]);
    expect(el.querySelectorAll(".pl-quality-noise").length).toBe(0); // 0.9 apart, seed noise 0.5
    model.set("noise", 1.0);
    await settle();
    expect(el.querySelectorAll(".pl-quality-noise").length).toBe(1);
  });
});
