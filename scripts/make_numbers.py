"""Regenerate every number of docs/reproduction.md and notebooks/numbers.json from runs.

    PEEKLENS_DATA=/path/to/shared/data python scripts/make_numbers.py            # the paper network's studies
    python scripts/make_numbers.py --alexnet                                      # also the AlexNet studies (slow)
    python scripts/make_numbers.py --samples 2000 --no-write                      # a quick look, no file changed
    python scripts/make_numbers.py --readme-only                                  # copy the docs' summary to README

Runs ``peeklens.studies.run_study`` for case studies I-III (and, with ``--alexnet``, the AlexNet
studies) at the paper's size (all 10,000 test images, ranks 10-50, seed 0), derives the claims the
docs make (relative errors per block, effective ranks, what the class-ordered network answers,
unused neurons, how similar the neurons of different digits' factors are), and writes them between
``<!-- BEGIN GENERATED: ... -->`` / ``<!-- END GENERATED: ... -->`` markers in docs/reproduction.md
and as the NUMBERS_* texts of notebooks/numbers.json (``python notebooks/make_notebooks.py
notebooks/numbers.json`` then writes them into the notebooks).  The summary table (with its stamp) is
copied into README.md between the same markers, so README and docs cannot disagree.  Without
``--alexnet`` the AlexNet rows of the summary are carried over from the previous run (their own
blocks name the commit that produced them).  Each generated block names the command and the commit
that produced it.  Trained networks are cached (``~/.cache/peeklens/models``).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reproduction.md"
NUMBERS = ROOT / "notebooks" / "numbers.json"
README = ROOT / "README.md"


def generated(text: str, key: str) -> str:
    """The body between the ``GENERATED: key`` markers of ``text``."""
    m = re.search(
        re.escape(f"<!-- BEGIN GENERATED: {key} -->") + r"\n(.*?)\n?" + re.escape(f"<!-- END GENERATED: {key} -->"),
        text,
        re.S,
    )
    if not m:
        raise SystemExit(f"no markers for {key!r}")
    return m.group(1)


def readme_summary(doc: str) -> str:
    """The docs' summary up to its table's end (stamp and table): what README shows."""
    body = generated(doc, "summary")
    lines = body.splitlines()
    last = max(i for i, line in enumerate(lines) if line.startswith("|"))
    return "\n".join(lines[: last + 1])


def sync_readme(doc: str) -> None:
    """Copy the summary table of docs/reproduction.md into README.md (between the summary markers)."""
    README.write_text(replace_between(README.read_text(), "summary", readme_summary(doc)))


def alexnet_numbers(studies: dict, stamp: str) -> str:
    """The NUMBERS_ALEXNET text of the notebooks, from the AlexNet studies' summaries (``StudyResult.summary()``)."""
    mn, cf = studies["alexnet-mnist"], studies["alexnet-cifar10"]

    def cell(st, what):
        if what == "acc":
            return " / ".join(f"{r['accuracy'] * 100:.1f}" for r in st["regimes"]) + " %"
        i = st["ranks"].index(what)
        return " / ".join(f"{r['rmse'][i]:.4f}" for r in st["regimes"])

    def gaps(st, i):
        vals = [r["rmse"][i] for r in st["regimes"]]
        return max(vals) - min(vals), all(a < b for a, b in zip(vals, vals[1:]))

    lo, hi = mn["ranks"][0], mn["ranks"][-1]
    ordered = mn["ordering_holds"]
    spread = max(gaps(cf, i)[0] for i in range(len(cf["ranks"])))
    rel = max((gaps(mn, i)[0] / min(r["rmse"][i] for r in mn["regimes"])) for i in range(len(mn["ranks"])))
    return (
        f"From `python scripts/make_numbers.py --alexnet` ({stamp}), the same as `peeklens study alexnet --dataset "
        f"mnist --train-samples {mn['meta']['train_pool']}` (time-boxed: fractions of the first "
        f"{mn['meta']['train_pool']:,} training images; {mn['meta']['samples']:,} test images captured; "
        f"{mn['meta']['seconds']:.0f} s) and `peeklens study alexnet --dataset cifar10` (the local subset: "
        f"{cf['meta']['train_pool']:,} training and {cf['meta']['samples']:,} test images; "
        f"{cf['meta']['seconds']:.0f} s), ranks {lo}–{hi}, seed 0, default solver, this shared 2-core CPU "
        + (
            "(trained networks from the cache)"
            if all(r["seconds"].get("cached_model") for st in (mn, cf) for r in st["regimes"])
            else "(networks trained in this run)"
        )
        + ":\n\n"
        f"| data | training | test accuracy | RMSE r={lo} | r={hi} |\n|---|---|---|---|---|\n"
        f"| MNIST | 25 % / 50 % / 75 % / 100 % | {cell(mn, 'acc')} | {cell(mn, lo)} | {cell(mn, hi)} |\n"
        f"| CIFAR-10 subset | 25 % / 50 % / 75 % / 100 % | {cell(cf, 'acc')} | {cell(cf, lo)} | {cell(cf, hi)} |\n\n"
        "**This does not reproduce the paper.** With the paper's training (one epoch of SGD, lr 0.01, momentum 0.5) "
        "the plain modified AlexNet (no batch norm) barely leaves chance on MNIST and stays at chance on the CIFAR-10 "
        "subset. On MNIST the RMSE "
        + (
            f"still orders the networks 25 % < 50 % < 75 % < 100 % at every rank, by less than {rel * 100:.1f} %"
            if ordered
            else "does not order the networks as the paper found at every rank"
        )
        + f"; on CIFAR-10 the RMSEs of the four networks differ by at most {spread:.4f}"
        + ("" if cf["ordering_holds"] else " with no consistent order")
        + ". Train longer (`epochs=`) or on the full data (`download=True`) to test the paper's AlexNet claim; "
        "see `docs/reproduction.md`."
    )


def previous_rows(doc: str, prefix: str = "| AlexNet") -> list[str]:
    """Rows of the current summary table starting with ``prefix`` (kept when their studies are not rerun)."""
    try:
        body = generated(doc, "summary")
    except SystemExit:
        return []
    return [line for line in body.splitlines() if line.startswith(prefix)]


def replace_between(text: str, key: str, body: str) -> str:
    begin, end = f"<!-- BEGIN GENERATED: {key} -->", f"<!-- END GENERATED: {key} -->"
    pat = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pat.search(text):
        raise SystemExit(f"no markers for {key!r} in the file being written")
    return pat.sub(lambda m: begin + "\n" + body.rstrip("\n") + "\n" + end, text)


def block_table(res) -> str:
    """Relative error per block at the lowest / highest rank, and each layer's entropy effective rank."""
    lo, hi = res.ranks[0], res.ranks[-1]
    blocks = res.results[0].sweep.block_names
    layers = [b for b in blocks if not b.startswith("input")]
    lines = [
        f"Relative error ‖X−WFᵀ‖/‖X‖ per block at rank {lo} / {hi}, and entropy effective rank of each layer:",
        "",
        "| regime | " + " | ".join(blocks) + " | " + " | ".join(f"eff. rank {n}" for n in layers) + " |",
        "|---|" + "---|" * (len(blocks) + len(layers)),
    ]
    for r in res.results:
        lines.append(
            f"| {r.label} | "
            + " | ".join(f"{r.sweep[lo].errors[b]:.3f} / {r.sweep[hi].errors[b]:.3f}" for b in blocks)
            + " | "
            + " | ".join(f"{r.spectrum.entropy_rank[n]:.0f}" for n in layers)
            + " |"
        )
    return "\n".join(lines)


def ordered_claims(res, test, rank: int = 10) -> dict:
    """What the class-ordered network answers, its unused neurons, and how alike its digits' neurons are."""
    from peeklens import views
    from peeklens.studies import normalize, train

    out = {}
    x, y = test
    for r in res.results:
        model = train(r.regime, progress=False).model
        with torch.no_grad():
            pred = torch.cat([model(normalize(x[i : i + 1000], "mnist")).argmax(1) for i in range(0, len(x), 1000)])
        counts = np.bincount(pred.numpy(), minlength=10)
        fit = r.sweep[rank]
        unused = {layer: views.utilisation(fit, layer)["unused_share"] for layer in fit.layer_names}
        # the digit that dominates each factor: the majority label of its 50 top-loading test images
        top = views.top_inputs(fit, k=50)
        labels = y[: fit.n_samples].numpy()  # the captured images are the first test images
        digit = [int(np.bincount(labels[t], minlength=10).argmax()) for t in top]
        share = [float(np.bincount(labels[t], minlength=10).max() / len(t)) for t in top]
        O = np.asarray(fit.loadings[fit.layer_names[-1]], dtype=np.float64)
        On = O / np.maximum(np.linalg.norm(O, axis=0, keepdims=True), 1e-12)
        sim = On.T @ On
        cos = [float(sim[a, b]) for a in range(fit.rank) for b in range(a + 1, fit.rank) if digit[a] != digit[b]]
        out[r.label] = {
            "predictions": counts.tolist(),
            "most_answered": int(counts.argmax()),
            "most_answered_share": float(counts.max() / counts.sum()),
            "unused_share": unused,
            "factor_digits": digit,
            "factor_purity": share,
            "cosine_different_digits": [min(cos), max(cos)] if cos else None,
        }
    return out


def main() -> None:
    torch.set_num_threads(1)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--alexnet", action="store_true", help="also the AlexNet studies (MNIST time-boxed, CIFAR-10)")
    p.add_argument("--no-write", action="store_true")
    p.add_argument(
        "--readme-only",
        action="store_true",
        help="only copy the docs' summary table into README.md and the AlexNet text from docs/reproduction.json",
    )
    a = p.parse_args()
    if a.readme_only:
        sync_readme(DOC.read_text())
        saved = json.loads((ROOT / "docs" / "reproduction.json").read_text())
        if "alexnet-mnist" in saved["studies"] and "alexnet-cifar10" in saved["studies"]:
            numbers = json.loads(NUMBERS.read_text())
            numbers["NUMBERS_ALEXNET"] = alexnet_numbers(saved["studies"], saved["stamp"])
            NUMBERS.write_text(json.dumps(numbers, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {README} and {NUMBERS}")
        return

    from peeklens import __version__
    from peeklens.studies import load_dataset, run_study

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    stamp = f"commit `{commit}`{' (with uncommitted changes in src/)' if dirty else ''}, peeklens {__version__}, torch {torch.__version__}"
    runs = [
        ("fraction", {}, "peeklens study fraction"),
        ("subset", {}, "peeklens study subset"),
        ("ordered", {}, "peeklens study ordered"),
    ]
    if a.alexnet:
        runs += [
            (
                "alexnet",
                dict(dataset="mnist", train_samples=15000, samples=min(a.samples, 2000)),
                "peeklens study alexnet --dataset mnist --train-samples 15000 --samples 2000",
            ),
            ("alexnet", dict(dataset="cifar10"), "peeklens study alexnet --dataset cifar10"),
        ]
    results, blocks = {}, {}
    for name, kw, cmd in runs:
        kw = {"samples": a.samples, **kw}
        t0 = time.perf_counter()
        res = run_study(name, progress=False, report=False, **kw)
        secs = time.perf_counter() - t0
        key = name if name != "alexnet" else f"alexnet-{kw['dataset']}"
        results[key] = res
        m = res.meta
        blocks[key] = (
            f"Generated by `python scripts/make_numbers.py` ({stamp}), the same as `{cmd}`: "
            f"{m['samples']} test images captured, accuracy on {m['eval_samples']} test images, ranks "
            f"{m['ranks']}, seed {m['seed']}, {m['epochs']} epoch, {secs:.0f} s on this machine"
            f" (networks {'from the cache' if all(r.seconds.get('cached_model') for r in res.results) else 'trained in this run'}).\n\n"
            + res.markdown()
            + "\n\n"
            + block_table(res)
        )
        print(f"{key}: {secs:.0f} s, ordering holds: {res.ordering()['holds']}", flush=True)
    test = load_dataset("mnist", False)
    claims = ordered_claims(results["ordered"], test)
    fr, su, od = results["fraction"], results["subset"], results["ordered"]
    summary = {
        "stamp": stamp,
        "samples": a.samples,
        "studies": {k: r.summary() for k, r in results.items()},
        "ordered_claims": claims,
    }
    for label, c in claims.items():
        print(
            f"{label}: answers {c['predictions']}, unused {c['unused_share']}, cosine {c['cosine_different_digits']}, "
            f"factor digits {c['factor_digits']}",
            flush=True,
        )
    if a.no_write:
        return

    def acc(res):
        return " / ".join(f"{r.accuracy * 100:.1f}" for r in res.results) + " %"

    def paper(res):
        return " / ".join(f"{r.paper_accuracy:g}" if r.paper_accuracy is not None else "–" for r in res.results) + " %"

    def holds(res):
        return "**yes**" if res.ordering()["holds"] else "**no**"

    o_lab, s_lab = od.results[0].label, od.results[1].label
    lo, hi = od.ranks[0], od.ranks[-1]
    rel = lambda r, layer="relu_1", k=lo: r.sweep[k].errors[layer]
    rows = [
        f"| I. training fraction | 25 % / 50 % / 75 % / 100 % of MNIST | {acc(fr)} | {paper(fr)} | {holds(fr)} at ranks {fr.ranks[0]}–{fr.ranks[-1]} |",
        f"| II. class subsets | {{0}} / {{0–4}} / {{5–9}} / {{0–9}} | {acc(su)} | {paper(su)} | {holds(su)} at ranks {su.ranks[0]}–{su.ranks[-1]} |",
        f"| III. class-ordered, 9s first | no shuffling | {od.results[0].accuracy * 100:.1f} % | 9 % | {holds(od)}: RMSE "
        f"{od.results[0].sweep[lo].rmse:.3f} vs {od.results[1].sweep[lo].rmse:.3f} (shuffled) at rank {lo}, "
        f"{od.results[0].sweep[hi].rmse:.3f} vs {od.results[1].sweep[hi].rmse:.3f} at rank {hi} |",
    ]
    old_doc = DOC.read_text()
    for key, title in (
        ("alexnet-cifar10", "AlexNet, CIFAR-10 subset"),
        ("alexnet-mnist", "AlexNet, MNIST (time-boxed)"),
    ):
        if key in results:
            res_a = results[key]
            pool = f"{'the first ' if key == 'alexnet-mnist' else ''}{res_a.meta['train_pool']:,} images"
            rows.append(
                f"| {title} | 25–100 % of {pool} | {acc(res_a)} | – | {holds(res_a)} at ranks "
                f"{res_a.ranks[0]}–{res_a.ranks[-1]} |"
            )
        else:  # not rerun: the previous row stays (its block below names the commit it came from)
            rows += [r for r in previous_rows(old_doc) if r.startswith(f"| {title} |")]
    c_o, c_s = claims[o_lab], claims[s_lab]
    key_numbers = (
        f"Generated by `python scripts/make_numbers.py` ({stamp}).\n\n"
        "| study | regime | test accuracy | paper | RMSE lower at every rank, as the paper found? |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"* The deepest layer carries the effect: the relative error of `relu_1` at rank {lo} is "
        + " / ".join(f"{rel(r):.3f}" for r in fr.results)
        + " for 25 / 50 / 75 / 100 % of the data "
        f"({rel(su.results[0]):.3f} for the one-class network, {rel(od.results[0]):.3f} for the class-ordered one); "
        "the input pixels' relative error ranges "
        f"{min(rel(r, 'input:0') for r in fr.results):.3f}–{max(rel(r, 'input:0') for r in fr.results):.3f} and `relu`'s "
        f"{min(rel(r, 'relu') for r in fr.results):.3f}–{max(rel(r, 'relu') for r in fr.results):.3f} over the four fractions.\n"
        "* Entropy effective rank of `relu_1` over the four fractions: "
        + " / ".join(f"{r.spectrum.entropy_rank['relu_1']:.0f}" for r in fr.results)
        + "; of `relu`: "
        + " / ".join(f"{r.spectrum.entropy_rank['relu']:.0f}" for r in fr.results)
        + ".\n"
        f"* The class-ordered network answers **{c_o['most_answered']}** for {c_o['most_answered_share'] * 100:.1f} % of the "
        f"{sum(c_o['predictions'])} test images (answers per class 0–9: {c_o['predictions']}).\n"
        f"* Unused neurons at rank 10 (loading below 1 % of the layer's largest on every factor): ordered network "
        + ", ".join(f"`{k}` {v * 100:.1f} %" for k, v in c_o["unused_share"].items())
        + "; shuffled network "
        + ", ".join(f"`{k}` {v * 100:.1f} %" for k, v in c_s["unused_share"].items())
        + ".\n"
        "* Cosine similarity of the `relu_1` loadings of rank-10 factors dominated by different digits: ordered network "
        + (
            f"{c_o['cosine_different_digits'][0]:.2f}–{c_o['cosine_different_digits'][1]:.2f}"
            if c_o["cosine_different_digits"]
            else "–"
        )
        + ", shuffled network "
        + (
            f"{c_s['cosine_different_digits'][0]:.2f}–{c_s['cosine_different_digits'][1]:.2f}"
            if c_s["cosine_different_digits"]
            else "–"
        )
        + f"; the digits dominating the ordered network's factors: {c_o['factor_digits']}.\n"
    )
    doc = replace_between(old_doc, "summary", key_numbers)
    for key, body in blocks.items():
        doc = replace_between(doc, key, body)
    DOC.write_text(doc)
    sync_readme(doc)

    def nb_table(res, names):
        head = (
            f"| {names} | test accuracy | paper | "
            + " | ".join(f"RMSE r={k}" if i == 0 else f"r={k}" for i, k in enumerate(res.ranks))
            + " |"
        )
        lines = [head, "|" + "---|" * (3 + len(res.ranks))]
        for r in res.results:
            pa = f"{r.paper_accuracy:g} %" if r.paper_accuracy is not None else "–"
            lines.append(
                f"| {r.label} | {r.accuracy * 100:.1f} % | {pa} | "
                + " | ".join(f"{r.sweep[k].rmse:.4f}" for k in res.ranks)
                + " |"
            )
        return "\n".join(lines)

    src = (
        f"From `python scripts/make_numbers.py` ({stamp}; the same code and settings as this notebook at full "
        f"size: all {a.samples:,} test images, ranks {fr.ranks[0]}–{fr.ranks[-1]}, seed 0, default solver):\n\n"
    )
    numbers = json.loads(NUMBERS.read_text()) if NUMBERS.exists() else {}
    numbers["NUMBERS_FRACTION"] = (
        src
        + nb_table(fr, "training data")
        + "\n\nOrdering as the paper found at every rank: "
        + ("yes" if fr.ordering()["holds"] else "no")
        + f". `relu_1` relative error at rank {lo}: "
        + " / ".join(f"{rel(r):.3f}" for r in fr.results)
        + "; its entropy effective rank: "
        + " / ".join(f"{r.spectrum.entropy_rank['relu_1']:.0f}" for r in fr.results)
        + "."
    )
    numbers["NUMBERS_SUBSET"] = (
        src
        + nb_table(su, "training classes")
        + "\n\nOrdering as the paper found at every rank: "
        + ("yes" if su.ordering()["holds"] else "no")
        + f". `relu_1` relative error at rank {lo}: "
        + " / ".join(f"{rel(r):.3f}" for r in su.results)
        + "."
    )
    numbers["NUMBERS_ORDERED"] = (
        src + nb_table(od, "training") + "\n\n"
        f"* The class-ordered network answers **{c_o['most_answered']}** for {c_o['most_answered_share'] * 100:.1f} % of the test "
        f"images (answers per class 0–9: {c_o['predictions']}).\n"
        f"* `relu_1` relative error at rank {lo}: {rel(od.results[0]):.3f} (ordered) against {rel(od.results[1]):.3f} (shuffled).\n"
        "* Unused neurons at rank 10: ordered "
        + ", ".join(f"`{k}` {v * 100:.1f} %" for k, v in c_o["unused_share"].items())
        + "; shuffled "
        + ", ".join(f"`{k}` {v * 100:.1f} %" for k, v in c_s["unused_share"].items())
        + ".\n"
        "* Cosine similarity of the `relu_1` loadings of factors dominated by different digits: ordered "
        + (
            f"{c_o['cosine_different_digits'][0]:.2f}–{c_o['cosine_different_digits'][1]:.2f}"
            if c_o["cosine_different_digits"]
            else "–"
        )
        + ", shuffled "
        + (
            f"{c_s['cosine_different_digits'][0]:.2f}–{c_s['cosine_different_digits'][1]:.2f}"
            if c_s["cosine_different_digits"]
            else "–"
        )
        + "."
    )
    if "alexnet-mnist" in results and "alexnet-cifar10" in results:
        numbers["NUMBERS_ALEXNET"] = alexnet_numbers(summary["studies"], stamp)
    NUMBERS.write_text(json.dumps(numbers, indent=1, ensure_ascii=False) + "\n")
    (ROOT / "docs" / "reproduction.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    print(f"wrote {DOC}, {README}, {NUMBERS} and docs/reproduction.json")


if __name__ == "__main__":
    sys.exit(main())
