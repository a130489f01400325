/**
 * The `quality` section of a payload (see `peeklens.schema`) as the compare view draws it. Files
 * without the section, or with a malformed one, give null: the comparison is drawn without scores.
 */
import type { NetworkQuality } from "../views/types";
import type { Meta } from "./schema";

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function interval(v: unknown): [number, number] | null {
  if (!Array.isArray(v) || v.length !== 2) return null;
  const a = num(v[0]);
  const b = num(v[1]);
  return a === null || b === null ? null : [a, b];
}

/** The network's quality score from a payload's metadata, or null when it has none. */
export function qualityOf(meta: Meta | null | undefined): NetworkQuality | null {
  const q = meta?.quality;
  if (!q || typeof q !== "object" || Array.isArray(q)) return null;
  const score = num(q.score);
  if (score === null) return null;
  const comps = q.components && typeof q.components === "object" ? q.components : {};
  const terms = q.terms && typeof q.terms === "object" ? q.terms : {};
  const used = Array.isArray(q.used) ? q.used.filter((u): u is string => typeof u === "string") : [];
  const cal = (q.calibration && typeof q.calibration === "object" ? q.calibration : {}) as Record<string, unknown>;
  return {
    score,
    components: used.map((name) => ({ name, value: num(comps[name]) ?? Number.NaN, term: num(terms[name]) })),
    fingerprint: typeof q.fingerprint === "string" ? q.fingerprint : "",
    rho: num(cal.rho),
    rhoCI: interval(cal.rho_ci),
    tau: num(cal.tau),
    tauCI: interval(cal.tau_ci),
    heldOut: typeof cal.held_out === "string" ? cal.held_out : "",
    seedNoise: num(cal.seed_noise),
  };
}
