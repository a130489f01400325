"""Write the tutorial notebooks 01-08 (without outputs).

    python notebooks/make_notebooks.py notebooks/numbers.json

numbers.json holds the measured numbers each notebook states (from the full-size runs in docs/reproduction.md
and one full-size execution of 01).

The notebooks read PEEKLENS_NOTEBOOK_SMALL: when set, they run at a small size (a few hundred test
images, the first 1,000 training images, ranks 2 and 4); tests/test_notebooks.py executes them so.
Notebooks 06-08 state no pasted numbers: every number their text relies on is printed by a cell.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
import peeklens as pl
from peeklens import studies, views

SMALL = studies.small_size()            # PEEKLENS_NOTEBOOK_SMALL=1: a quick run (the tests use it)
SAMPLES = 200 if SMALL else 10_000      # test images captured (the paper: all 10,000)
TRAIN = 1_000 if SMALL else None        # only the first N training images (None: all 60,000)
RANKS = [2, 4] if SMALL else [10, 20, 30, 40, 50]   # the paper's ranks
FIT = dict(max_iter=30) if SMALL else {}            # factorization settings (default solver)
EVAL = 500 if SMALL else None         # test images for the accuracy (None: all)
SHOW_RANK = RANKS[0]
print("small run" if SMALL else "full-size run")'''

DATA_NOTE = (
    "The data come from `$PEEKLENS_DATA` when it is set (a directory holding `mnist/` with the four original "
    "IDX `.gz` files and, for notebook 05, `cifar10/`), else from `~/.cache/peeklens/data` or `./data`; when "
    "they are in none of these, the loaders download them through torchvision once. Trained networks are "
    "cached in `~/.cache/peeklens/models` "
    "(or `$PEEKLENS_CACHE`), so running a notebook again only factorizes."
)


def nb(cells):
    n = new_notebook(cells=cells)
    n.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    n.metadata["language_info"] = {"name": "python"}
    return n


def md(s):
    return new_markdown_cell(s.strip())


def code(s):
    return new_code_cell(s.strip())


NB = {}

NB["01-quickstart.ipynb"] = nb([
    md("""
# 01 · Quickstart: look inside your own model

peeklens stacks a network's **inputs** and the activations of chosen **layers** over a set of test
images, and factorizes them jointly with one shared, non-negative factor per image
(Saini & Papalexakis, 2018). Each factor then has

* a **latent image** (how it looks in pixel space),
* the **test images that load most on it** (what it responds to — labels are only shown, never used),
* a pattern over each layer's **neurons** (which part of the network carries it).

The **RMSE against rank** says how compressible the activations are; the paper found that
less (or more narrowly) trained networks are *more* compressible.

This notebook uses a model of your own: any `torch.nn.Module` works.
""" + "\n\n" + DATA_NOTE),
    code(SETUP),
    md("""
## A model of your own

A small CNN defined with `nn.Sequential` and trained for a few hundred steps on MNIST. Replace it with
your model; peeklens only needs the live module and some inputs.
"""),
    code('''\
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2),      # "1": 8 x 24 x 24 activations
    nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2),     # "4": 16 x 8 x 8
    nn.Flatten(), nn.Linear(16 * 4 * 4, 10),
)
x_train, y_train = studies.load_mnist(train=True)
x_test, y_test = studies.load_mnist(train=False)
n_train = 2_000 if SMALL else 20_000
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for i in range(0, n_train, 64):
    xb, yb = x_train[i:i + 64], y_train[i:i + 64]
    opt.zero_grad()
    nn.functional.cross_entropy(model(xb), yb).backward()
    opt.step()
with torch.no_grad():
    acc = (model(x_test).argmax(1) == y_test).float().mean().item()
print(f"test accuracy after {n_train} training images: {acc:.1%}")'''),
    md("""
## Capture, factorize, look

`pl.list_layers` names what can be captured (module names for hooks, FX node names for functional
calls). `pl.capture` records the inputs (one block per channel) and the chosen layers as
(features × samples) matrices; labels ride along for display only.
"""),
    code('''\
print(pl.list_layers(model))
from torch.utils.data import TensorDataset

acts = pl.capture(model, TensorDataset(x_test[:SAMPLES], y_test[:SAMPLES]), layers=["1", "4"])
acts'''),
    code('''\
sweep = pl.sweep(acts, ranks=RANKS, **FIT)   # one factorization per rank, with a progress bar
spectrum = pl.spectrum(acts, k=50, blocks=acts.layer_names)
sweep'''),
    md("""
## The dashboard

Move the **rank slider**: the RMSE curve marks the rank, the gallery shows one latent image per factor with
the images that load most on it and their classes, and the heatmaps show, per layer, which neurons each
factor uses (click a tile to select its factor; hover a heatmap for channel, position and value).
"""),
    code('''\
from peeklens.widgets import Dashboard

Dashboard(sweep, spectrum)'''),
    md("""
The same numbers are plain arrays in `peeklens.views` (what the widgets and the HTML report draw):
"""),
    code('''\
fit = sweep[SHOW_RANK]
hist = views.class_histograms(fit, k=50)      # (rank, 10): classes of each factor's top-50 images
for r in range(fit.rank):
    top = hist[r].argsort()[::-1][:3]
    print(f"factor {r}: classes of its top-50 images:", ", ".join(f"{c} ({hist[r][c]})" for c in top if hist[r][c]))
for layer in fit.layer_names:
    print(layer, f"unused neurons: {views.utilisation(fit, layer)['unused_share']:.0%}")'''),
    md("""
## Save and share

`pl.save` writes one `.peeklens` file (NumPy arrays + JSON metadata, no pickle); `pl.load` gives the sweep
back, with its latent images and top inputs, without the model or the data.
"""),
    code('''\
import tempfile, os

path = pl.save(sweep, os.path.join(tempfile.mkdtemp(), "my-model.peeklens"))
again = pl.load(path)
pl.show(again)
print(path, f"{os.path.getsize(path) / 1e6:.1f} MB", "ranks", again.ranks)'''),
    md("""
**What we got** at full size (20,000 training images for the little CNN, all 10,000 test images, ranks
10–50, this machine's CPU): NUMBERS_QUICKSTART

The same workflow from the shell: `peeklens demo` (the paper's network on 25 % and 100 % of MNIST, with an
HTML report).
"""),
])


def study_nb(title, intro, name, extra_cells, numbers, study_kwargs="", samples="SAMPLES", pre=()):
    kw = f", {study_kwargs}" if study_kwargs else ""
    return nb([
        md(f"# {title}\n\n{intro}\n\n{DATA_NOTE}"),
        code(SETUP),
        *pre,
        md("## Train every regime, capture the test set, sweep the ranks\n\n"
           "`studies.run_study` trains (or loads from the cache) one network per regime with the paper's "
           "settings — one epoch of SGD, lr 0.01, momentum 0.5, batch 64 — measures its accuracy on all "
           "10,000 test images, captures the first `SAMPLES` test images and sweeps `RANKS`."),
        code(f'''\
res = studies.run_study("{name}", samples={samples}, ranks=RANKS, train_samples=TRAIN, eval_samples=EVAL{kw},
                        **FIT)
print(res.markdown())'''),
        md("## RMSE against rank and the spectra, all networks in one chart\n\n"
           "The paper's finding: **the less (or the narrower) the training, the lower the RMSE at every rank**. "
           "The table above says whether that held here, rank by rank. The spectra (top singular values of "
           "each layer, semi-log) show the same from another side: a faster decay means fewer directions carry "
           "the activations."),
        code('''\
from peeklens.widgets import Compare, SpectrumPlot

sweeps = {r.label: r.sweep for r in res.results}
spectra = {r.label: r.spectrum for r in res.results}
Compare(sweeps, spectra=spectra)'''),
        code('''\
SpectrumPlot(spectra, title="top singular values per layer")'''),
        *extra_cells,
        md("## Numbers from the full-size run\n\n" + numbers),
    ])


NB["02-case-study-fraction.ipynb"] = study_nb(
    "02 · Case study I: how much training data?",
    "The paper trained its MNIST network for one epoch on 25 %, 50 %, 75 % and 100 % of the training set "
    "(test accuracy 83, 89, 93, 95 %) and found the **RMSE lower at every rank for less training data**, "
    "with the deepest layer's spectrum separating the networks most clearly.",
    "fraction",
    [
        md("## One network up close\n\nThe dashboard of the network trained on 25 % of the data: compare its "
           "latent images and heatmaps with those of the 100 % network (`res.results[-1]`)."),
        code('''\
from peeklens.widgets import Dashboard

Dashboard(res.results[0].sweep, res.results[0].spectrum)'''),
    ],
    "NUMBERS_FRACTION",
)

NB["03-case-study-subsets.ipynb"] = study_nb(
    "03 · Case study II: training on some classes only",
    "The paper trained on the digits {0}, {0–4}, {5–9} and all of them (test accuracy 9, 50, 47, 93 %) and "
    "found that **class-subset training gives a lower RMSE**, confirmed by the deepest layer's spectrum.",
    "subset",
    [
        md("## What a one-class network sees\n\nThe latent images of the network trained on 0s only, and the "
           "classes of the test images that load on each factor: look for factors that still separate digits "
           "it never saw."),
        code('''\
from peeklens.widgets import LatentGallery

LatentGallery(res.results[0].sweep, rank=SHOW_RANK)'''),
    ],
    "NUMBERS_SUBSET",
)

NB["04-case-study-ordered.ipynb"] = study_nb(
    "04 · Case study III: class by class, without shuffling",
    "Training on all 9s first, then the other digits in order, without shuffling, gave the paper a network "
    "with 9 % test accuracy that mostly recognises one class. The neuron heatmaps show **which neurons fire "
    "for which digits** and **how little of the network is used**.",
    "ordered",
    [
        md("## Which neurons fire for which digits\n\nEach factor is named by the most common class among "
           "its 50 strongest test images. Two factors of different digits that load on the same neurons of the "
           "last convolutional layer (`relu_1`) share those neurons: the table lists the pairs with the "
           "largest overlap (cosine similarity of their neuron loadings)."),
        code('''\
import numpy as np
from peeklens.widgets import NeuronHeatmaps

ordered = res.results[0]
fit = ordered.sweep[max(RANKS) if SMALL else 10]
hist = views.class_histograms(fit, k=50)
digit = hist.argmax(1)
O = views.neuron_factor_matrix(fit, "relu_1", normalize=None)
On = O / np.maximum(np.linalg.norm(O, axis=0, keepdims=True), 1e-12)
sim = On.T @ On
pairs = sorted(((sim[a, b], a, b) for a in range(fit.rank) for b in range(a + 1, fit.rank)
                if digit[a] != digit[b]), reverse=True)
for s, a, b in pairs[:6]:
    print(f"factor {a} (mostly {digit[a]}) and factor {b} (mostly {digit[b]}) share neurons: cosine {s:.2f}")
NeuronHeatmaps(ordered.sweep, rank=fit.rank)'''),
        md("## How much of the network is used\n\nThe share of neurons whose loading is negligible (below 1 % "
           "of the layer's largest) on every factor, for the class-ordered network and the normally trained one."),
        code('''\
for r in res.results:
    f = r.sweep[fit.rank]
    shares = {layer: f"{views.utilisation(f, layer)['unused_share']:.0%}" for layer in f.layer_names}
    print(f"{r.label:28s} accuracy {r.accuracy:.1%}  unused neurons per layer {shares}")'''),
    ],
    "NUMBERS_ORDERED",
)

NB["05-alexnet.ipynb"] = study_nb(
    "05 · The modified AlexNet on MNIST and CIFAR-10",
    "The paper repeated case study I with the modified AlexNet of the public `pytorch-classification` "
    "repository (five convolutions and one linear classifier), on MNIST (28 × 28, grayscale) and CIFAR-10 "
    "(32 × 32, RGB), and saw the same: **less training data, lower RMSE**. Here the five ReLU outputs are "
    "analysed. The local CIFAR-10 data is a subset (5,169 training and 1,017 test images; see the data README), "
    "so its accuracies are far below a fully trained AlexNet's.",
    "alexnet",
    [
        md("## CIFAR-10\n\nThe same study on CIFAR-10: three input channels, so the latent images are in colour."),
        code('''\
res_c = studies.run_study("alexnet", dataset="cifar10", samples=min(SAMPLES, 2000), ranks=RANKS,
                          train_samples=TRAIN, eval_samples=EVAL, fractions=FRACTIONS, **FIT)
print(res_c.markdown())
Compare({r.label: r.sweep for r in res_c.results}, spectra={r.label: r.spectrum for r in res_c.results})'''),
        code('''\
from peeklens.widgets import Dashboard

Dashboard(res_c.results[-1].sweep, res_c.results[-1].spectrum)'''),
    ],
    "NUMBERS_ALEXNET",
    samples="min(SAMPLES, 2000)",
    study_kwargs="fractions=FRACTIONS",
    pre=[code('''\
# AlexNet is heavier: in a small run, two fractions of the first 600 training images only.
FRACTIONS = [0.5, 1.0] if SMALL else None   # None: the paper's 25, 50, 75 and 100 %
TRAIN = 600 if SMALL else None''')],
)

FIGURES = '''\
import matplotlib.pyplot as plt
import numpy as np


def image_grid(rows, titles=None, row_labels=None, cmap="gray", size=1.1):
    """Draw a grid of small pictures: rows[i][j] is an (H, W) or (H, W, 3) array in [0, 1] (None: empty)."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols, size * n_rows), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([]); ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if j < len(row) and row[j] is not None:
                ax.imshow(np.clip(row[j], 0, 1), cmap=cmap, vmin=0, vmax=1)
                if titles is not None and titles[i][j]:
                    ax.set_title(titles[i][j], fontsize=7)
        if row_labels is not None:
            axes[i, 0].set_ylabel(row_labels[i], fontsize=8, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.2)
    return fig'''

NB["06-transformer.ipynb"] = nb([
    md("""
# 06 · A vision transformer, token by token

Transformers are where people debug models today, and their activations differ from the paper's CNNs in two
ways:

* **one row per token.** A ViT's block outputs are (images × tokens × features). Flattening a whole image
  (the paper's choice) mixes what a factor responds to with where; here every **token is a sample** of its
  own (`samples="tokens"`, the choice of concept-extraction work such as CRAFT), so a factor is a set of
  *patches* that load on it.
* **signed activations.** GELU MLPs and attention outputs take both signs. `nonneg="semi"` keeps them as they
  are and fits them by **semi-NMF** (Ding, Li & Jordan 2010): each layer's loadings are free, the shared
  sample factor F stays non-negative, so a token still *loads* on a factor (F ≥ 0) while a factor is a signed
  direction in each layer.

This notebook trains a small vision transformer on MNIST (7 × 7 patches of 4 × 4 pixels, a class token,
two pre-norm blocks with a GELU MLP) on this CPU, captures its attention and MLP outputs per token on test
digits, factorizes them, and shows which patches each factor picks out and where they sit in the digit.
""" + "\n\n" + DATA_NOTE),
    code('''\
import time

import torch
from torch.utils.data import TensorDataset

import peeklens as pl
from peeklens import studies
from peeklens.studies.vit import TinyViT, ViTConfig, patch_box, train_vit

SMALL = studies.small_size()       # PEEKLENS_NOTEBOOK_SMALL=1: a quick run (the tests use it)
# full size: all 60,000 training images, 2 epochs (a few minutes on 2 cores); small: 2,000 images, 3 epochs
CONFIG = ViTConfig(train_samples=2_000, epochs=3) if SMALL else ViTConfig()
SAMPLES = 100 if SMALL else 1_000  # test digits captured; each gives 50 tokens, i.e. 50 samples
RANKS = [4, 6] if SMALL else [6, 8, 10, 12]
SHOW_RANK = RANKS[-1]
FIT = dict(max_iter=50) if SMALL else {}
torch.set_num_threads(min(2, torch.get_num_threads()))
print("small run" if SMALL else "full-size run")'''),
    code(FIGURES),
    md("""
## Train the transformer (or load it from the cache)

`train_vit` trains with AdamW and a one-cycle schedule on normalized MNIST and caches the weights under the
settings' key; a second run loads them. The cell prints the time it took and the accuracy on all 10,000 test
digits.
"""),
    code('''\
t0 = time.perf_counter()
trained = train_vit(CONFIG)
model = trained.model
x_test, y_test = studies.load_mnist(train=False)
accuracy = studies.evaluate(model, x_test, y_test)
how = "loaded from the cache" if trained.cached else f"trained on {CONFIG.train_samples or 60_000:,} images"
print(f"{how} in {time.perf_counter() - t0:.0f} s; test accuracy {accuracy:.1%}")
print(f"{sum(p.numel() for p in model.parameters()):,} parameters; {model.n_tokens} tokens per image "
      f"(1 class token + {model.grid} x {model.grid} patches of {model.patch} x {model.patch} pixels)")
print(pl.list_layers(model)["modules"])'''),
    md("""
## Capture every token of the attention and MLP outputs

Each block's `attn` and `mlp` output is a (batch, tokens, 64) tensor. With `samples="tokens"` every token of
every image becomes one column of each block; `acts.sample_info` says which image (`"sample"`) and which
token (`"position"`: 0 is the class token, `1 + i` patch `i`, row-major) each column is. The images are
token-less pixels, so no input block is stored (`include_input=False`): we keep the digits ourselves to draw
the patches. The cell prints the share of negative entries in each block: the reason for `nonneg="semi"`.
"""),
    code('''\
LAYERS = ["blocks.0.attn", "blocks.0.mlp", "blocks.1.attn", "blocks.1.mlp"]
digits, classes = x_test[:SAMPLES], y_test[:SAMPLES]
acts = pl.capture(model, TensorDataset(studies.normalize(digits, "mnist"), classes), layers=LAYERS,
                  samples="tokens", include_input=False, nonneg="semi")
image_of, position = acts.sample_info["sample"], acts.sample_info["position"]
print(acts)
print(f"{SAMPLES} digits x {model.n_tokens} tokens = {acts.n_samples:,} samples")
for name in acts.layer_names:
    X = acts[name].data
    print(f"{name:14s} signed: {acts[name].signed}   negative entries: {(X < 0).mean():.0%}")'''),
    md("""
## Factorize: semi-NMF on the signed blocks

`pl.sweep` fits every rank; the signed blocks are fitted by semi-NMF automatically. The cell prints, at the
rank shown below, the relative error of each block, that F has no negative entry, and the share of negative
loadings per layer (a signed direction, not a clipped one).
"""),
    code('''\
sweep = pl.sweep(acts, ranks=RANKS, **FIT)
fit = sweep[SHOW_RANK]
print(f"rank {fit.rank}: RMSE {fit.rmse:.4f}; min of F {fit.F.min():.3g}")
for name in fit.layer_names:
    W = fit.loadings[name]
    print(f"  {name:14s} relative error {fit.errors[name]:.3f}   negative loadings {(W < 0).mean():.0%}")
print("RMSE against rank:", {r: round(sweep[r].rmse, 4) for r in sweep.ranks})'''),
    md("""
## Where in the digit each factor loads

For each factor, the mean of its column of F over the digits, per token: a 7 × 7 map over the patch grid
(bright: the patches at that place load on the factor). The cell also prints, per factor, how much of its
total loading falls on the class token, and how much ink (mean pixel value, 0 to 1) its 50 strongest patches
hold against the average patch, and the mean row and column of those patches on the 7 × 7 grid: together they
tell a factor that picks out a *place* (top, centre, border of the digit) from one that picks out a *content*
(stroke, edge, empty background).
"""),
    code('''\
F = fit.F
grid = model.grid
mean_by_position = np.stack([F[position == p].mean(0) for p in range(model.n_tokens)])  # (tokens, rank)
patches = digits[:, 0].unfold(1, model.patch, model.patch).unfold(2, model.patch, model.patch)  # (N, 7, 7, 4, 4)
ink = patches.mean((-1, -2)).reshape(len(digits), -1).numpy()                                  # (N, 49)
token_ink = np.where(position > 0, ink[image_of, np.maximum(position - 1, 0)], np.nan)
order = np.argsort(-F, axis=0)
for r in range(fit.rank):
    cls_share = F[position == 0, r].sum() / max(F[:, r].sum(), 1e-12)
    top = [i for i in order[:, r] if position[i] > 0][:50]
    rows, cols = np.divmod(position[top] - 1, grid)
    print(f"factor {r}: {cls_share:5.1%} of its loading on the class token; top-50 patches: ink "
          f"{np.nanmean(token_ink[top]):.2f} (all patches {np.nanmean(token_ink):.2f}), mean row {rows.mean():.1f}, "
          f"mean column {cols.mean():.1f} (of 0-{grid - 1})")
maps = mean_by_position[1:].T.reshape(fit.rank, grid, grid)
maps = maps / np.maximum(maps.max((1, 2), keepdims=True), 1e-12)
fig = image_grid([list(maps)], titles=[[f"factor {r}" for r in range(fit.rank)]], cmap="viridis", size=1.3)'''),
    md("""
## The patches each factor picks out

For each factor, its strongest patch tokens (one per digit, strongest first): the digit with the patch
outlined, and the 4 × 4 patch itself enlarged below it. The first column is the factor's map from above.
Labels are only shown: the factorization never saw them.
"""),
    code('''\
from matplotlib.patches import Rectangle

SHOW = 6
fig, axes = plt.subplots(2 * fit.rank, SHOW + 1, figsize=(1.0 * (SHOW + 1), 2.0 * fit.rank), squeeze=False)
for ax in axes.flat:
    ax.set_xticks([]); ax.set_yticks([])
for r in range(fit.rank):
    axes[2 * r, 0].imshow(maps[r], cmap="viridis")
    axes[2 * r, 0].set_ylabel(f"factor {r}", fontsize=8)
    axes[2 * r + 1, 0].axis("off")
    seen, picked = set(), []
    for i in order[:, r]:
        if position[i] > 0 and image_of[i] not in seen:
            seen.add(image_of[i]); picked.append(i)
        if len(picked) == SHOW:
            break
    for j, i in enumerate(picked, start=1):
        top_, left, bottom, right = patch_box(int(position[i]), model.patch)
        img = digits[image_of[i], 0].numpy()
        axes[2 * r, j].imshow(img, cmap="gray", vmin=0, vmax=1)
        axes[2 * r, j].add_patch(Rectangle((left - 0.5, top_ - 0.5), model.patch, model.patch,
                                           fill=False, edgecolor="red", linewidth=1.5))
        axes[2 * r, j].set_title(f"digit {int(classes[image_of[i]])}", fontsize=7)
        axes[2 * r + 1, j].imshow(img[top_:bottom, left:right], cmap="gray", vmin=0, vmax=1)
fig.tight_layout(pad=0.2)'''),
    md("""
## Which digits each factor's tokens come from

The classes of the images behind each factor's 50 strongest tokens, and the share of those tokens that are
class tokens (where the ViT reads out its decision): does a factor pick out one digit, and is it a class-token
factor or a patch factor?
"""),
    code('''\
for r in range(fit.rank):
    top = order[:50, r]
    counts = np.bincount(classes.numpy()[image_of[top]], minlength=10)
    best = counts.argsort()[::-1][:3]
    print(f"factor {r}: class tokens {np.mean(position[top] == 0):4.0%} of its top 50; digits "
          + ", ".join(f"{c} ({counts[c]})" for c in best if counts[c]))'''),
    md("""
## The interactive view

The neuron heatmaps of the four blocks (64 features each): signed loadings are drawn with a diverging colour
map. Move the rank slider to see factors split as the rank grows.
"""),
    code('''\
from peeklens.widgets import NeuronHeatmaps

NeuronHeatmaps(sweep, rank=SHOW_RANK)'''),
])

NB["07-cifar-interpret.ipynb"] = nb([
    md("""
# 07 · What a factor responds to, four ways (CIFAR-10)

On MNIST a factor's **latent image** (its input-side loadings folded back into a picture) already looks like a
digit. On natural images it is a blur, and the **top inputs** alone do not say *what in them* the factor
responds to. The methods that the survey behind this project lists for single neurons answer that; here they
are applied to **factors**, the directions `O_layer[:, k]` that the coupled factorization finds in a layer:

1. the **latent image**: the factor's loadings on the three input channels;
2. the **top inputs**: the test images with the largest `F[:, k]`;
3. the **maximized input** (`pl.maximize`): the image that drives the factor's activation
   `<a(x), O_layer[:, k]>` up the most, optimized in a Fourier parameterization with colour decorrelation and
   random jitter (Olah et al. 2017);
4. the **attribution** (`pl.attribute`): where in each top input the factor finds its evidence (guided
   backprop through Captum), drawn over the image.

The network is the modified AlexNet of notebook 05, trained on the local CIFAR-10 subset (see the data
README; the cell below prints how many training images it has), so its accuracy is far below a fully trained
AlexNet's; the cell below prints it.
""" + "\n\n" + DATA_NOTE),
    code('''\
import functools
import time

import torch
from torch.utils.data import TensorDataset

import peeklens as pl
from peeklens import studies, views

SMALL = studies.small_size()      # PEEKLENS_NOTEBOOK_SMALL=1: a quick run (the tests use it)
# SGD with momentum 0.9 for 6 epochs (the paper's one epoch at momentum 0.5 leaves this network near chance)
REGIME = studies.Regime(network="alexnet", dataset="cifar10", lr=0.01, momentum=0.9,
                        epochs=2 if SMALL else 6, train_samples=600 if SMALL else None)
SAMPLES = 200 if SMALL else None  # test images captured (None: all of the local subset)
RANK = 6 if SMALL else 10
LAYER = "features.7"              # the third convolution's ReLU (384 channels x 2 x 2)
SHOW = 3 if SMALL else 5          # factors drawn, strongest first
STEPS = 32 if SMALL else 256      # optimization steps of pl.maximize
torch.set_num_threads(min(2, torch.get_num_threads()))
print("small run" if SMALL else "full-size run")'''),
    code(FIGURES),
    md("""
## Train (or load), capture, factorize

The network sees normalized images; the factorization sees the [0, 1] pixels (`input_transform`
undoes the normalization for the stored input blocks), and `to_model` maps pictures of that space back to
what the network takes: `pl.maximize` and `pl.attribute` need it (`preprocess=`).
"""),
    code('''\
t0 = time.perf_counter()
trained = studies.train(REGIME)
model = trained.model
x_test, y_test = studies.load_cifar10(train=False)
accuracy = studies.evaluate(model, x_test, y_test, "cifar10")
how = "loaded from the cache" if trained.cached else "trained"
print(f"{how} in {time.perf_counter() - t0:.0f} s ({trained.n_train:,} training images, {REGIME.epochs} epochs); "
      f"accuracy {accuracy:.1%} on the {len(x_test):,} local test images")

x, y = (x_test, y_test) if SAMPLES is None else (x_test[:SAMPLES], y_test[:SAMPLES])
acts = pl.capture(model, TensorDataset(studies.normalize(x, "cifar10"), y), layers=studies.ALEXNET_LAYERS,
                  input_transform=studies.denormalizer("cifar10"))
fit = pl.factorize(acts, rank=RANK)
to_model = functools.partial(studies.normalize, dataset="cifar10")
print(acts)
print(f"rank {RANK}: RMSE {fit.rmse:.4f}; relative error per block:",
      {name: round(err, 3) for name, err in fit.errors.items()})'''),
    md("""
## The four views of each factor

For the `SHOW` strongest factors (share of the model's energy), one row each: the latent image, the four top
inputs, the maximized input, and the guided-backprop heat (bright: evidence) over the same four inputs. The
cell prints, per factor, the classes of its top 8 inputs, how far beyond the top real input's score the
maximized input went (`score / reference`), and the share of the attribution heat that falls inside the
hottest window of 40 % of the side, next to that window's share of the image area (what evenly spread heat
would put there; a focused factor puts much more).
"""),
    code('''\
import matplotlib.pyplot as plt

names = studies.CIFAR10_CLASSES
strength = views.factor_strength(fit)
shown = [int(k) for k in np.argsort(-strength)[:SHOW]]
latent = views.latent_images(fit)
thumbs = views.thumbnails(fit, k=8)
heat_map = plt.get_cmap("viridis")
rows, titles, labels = [], [], []
t0 = time.perf_counter()
for k in shown:
    m = pl.maximize(model, fit, LAYER, k, steps=STEPS, preprocess=to_model, progress=False)
    att = pl.attribute(model, fit, LAYER, k, k=4, method="guided_backprop", crops=True, preprocess=to_model)
    pictures = att.inputs.transpose(0, 2, 3, 1)                       # (4, H, W, 3) in [0, 1]
    heat = att.heatmaps / np.maximum(att.heatmaps.max((1, 2), keepdims=True), 1e-12)
    overlays = [0.35 * p + 0.65 * heat_map(h)[..., :3] for p, h in zip(pictures, heat)]
    inside = []
    for h, (top, left, height, width) in zip(att.heatmaps, att.boxes):
        inside.append(h[top:top + height, left:left + width].sum() / max(h.sum(), 1e-12))
    top8 = views.top_inputs(fit, 8)[k]
    print(f"factor {k} ({strength[k]:.0%} of the energy): top inputs "
          + ", ".join(names[int(c)] for c in fit.labels[top8])
          + f"; maximized score {m.scores[0] / m.reference:.2f} x the top input's; "
          f"{np.mean(inside):.0%} of the heat in the hottest window "
          f"({att.boxes[0, 2] * att.boxes[0, 3] / pictures[0, ..., 0].size:.0%} of the area)")
    rows.append([latent[k], *thumbs[k][:4], m.images[0], *overlays])
    titles.append(["latent", "top 1", "top 2", "top 3", "top 4", "maximized", "heat 1", "heat 2", "heat 3", "heat 4"])
    labels.append(f"factor {k}")
print(f"maximize + attribute: {(time.perf_counter() - t0) / len(shown):.1f} s per factor")
fig = image_grid(rows, titles=titles, row_labels=labels, size=1.15)'''),
    md("""
## Zoomed on the evidence

The attribution's crops (`crops=True`): each top input cut to the window that holds the most heat, as
CRAFT shows concepts. If a factor means "sky" or "a wheel", its crops look alike even when the whole images
do not.
"""),
    code('''\
crop_rows = []
for k in shown:
    att = pl.attribute(model, fit, LAYER, k, k=8, method="guided_backprop", crops=True, preprocess=to_model)
    crop_rows.append(list(att.crops.transpose(0, 2, 3, 1)))
fig = image_grid(crop_rows, row_labels=[f"factor {k}" for k in shown], size=0.9)'''),
    md("""
## The gallery

The same factorization in the interactive gallery: every factor's latent image, top inputs and the classes
of its 50 strongest inputs.
"""),
    code('''\
from peeklens.widgets import LatentGallery

LatentGallery(fit, class_names=names)'''),
])

NB["08-tensor-lens.ipynb"] = nb([
    md("""
# 08 · The tensor lens: matrix against tensor model at equal rank

The paper flattens each convolutional layer into a (channels · positions × images) matrix, so one factor's
loadings mix *which channels* with *where in the image*; its conclusion proposes a tensor model as the next
step. peeklens' tensor lens keeps a convolutional block's shape: the layer `relu` (10 channels × 12 × 12
positions × images) is a third-order tensor with a non-negative CP model `[[C, S, F]]`, whose image factor
**F is the same F** shared with the input channels (still matrices, as in the paper). Each factor then has a
channel pattern `C[:, k]` (`fit.loadings[name]`) and one spatial map `S[:, k]` (`fit.spatial[name]`,
folded to H × W).

The CP model is a restriction of the matrix model (its loadings are Khatri–Rao products of a channel and a
position vector), so at equal rank it fits less well with fewer numbers. This notebook repeats case study I
(notebook 02: the paper's MNIST network trained on a fraction of the training data) with both models at the
same ranks and asks:

* the **relative error per block** and the **RMSE** of each model;
* the **number of parameters** and the **time** of each;
* whether the tensor model's RMSE **orders the regimes** as the matrix model's does (the paper's finding:
  less training data, lower RMSE);
* what the **spatial maps** show.

`docs/tensor.md` describes the solver and holds the full study of `benchmarks/bench_tensor.py --study`
(ranks 10 to 50).
""" + "\n\n" + DATA_NOTE),
    code('''\
import time

import torch
from torch.utils.data import TensorDataset

import peeklens as pl
from peeklens import studies
from peeklens.nmf.tensor import sweep_tensor, tensor_spatial_maps

SMALL = studies.small_size()                    # PEEKLENS_NOTEBOOK_SMALL=1: a quick run (the tests use it)
FRACTIONS = [0.25, 1.0] if SMALL else [0.25, 0.5, 0.75, 1.0]
TRAIN = 1_000 if SMALL else None                # only the first N training images (None: all 60,000)
SAMPLES = 300 if SMALL else 10_000              # test images captured
RANKS = [2, 4] if SMALL else [10, 20, 30]
FIT = dict(max_iter=30) if SMALL else {}        # both models: the same stopping rule
SHOW_RANK = RANKS[-1]
torch.set_num_threads(min(2, torch.get_num_threads()))
print("small run" if SMALL else "full-size run")'''),
    code(FIGURES),
    md("""
## Train, capture, and fit both models

For each regime: train the paper's network (one epoch of SGD with the paper's settings; cached, shared with
notebook 02), capture the input and the two ReLU outputs on the test images, then sweep the ranks with
the matrix model (`pl.sweep`) and with the tensor model (`sweep_tensor`: `relu` and `relu_1` become tensors,
the input channel stays a matrix), both warm-started across ranks.
"""),
    code('''\
x_test, y_test = studies.load_mnist(train=False)
runs = {}
for fraction in FRACTIONS:
    regime = studies.Regime(fraction=fraction, train_samples=TRAIN)
    model = studies.train(regime).model
    acts = pl.capture(model, TensorDataset(studies.normalize(x_test[:SAMPLES], "mnist"), y_test[:SAMPLES]),
                      layers=studies.PAPER_LAYERS, input_transform=studies.denormalizer("mnist"))
    t0 = time.perf_counter()
    matrix = pl.sweep(acts, ranks=RANKS, progress=False, **FIT)
    t1 = time.perf_counter()
    tensor = sweep_tensor(acts, ranks=RANKS, progress=False, **FIT)
    t2 = time.perf_counter()
    runs[regime.label] = dict(matrix=matrix, tensor=tensor, seconds=dict(matrix=t1 - t0, tensor=t2 - t1),
                              accuracy=studies.evaluate(model, x_test, y_test))
    print(f"{regime.label:18s} accuracy {runs[regime.label]['accuracy']:.1%}; whole sweep: matrix "
          f"{t1 - t0:.1f} s, tensor {t2 - t1:.1f} s")
blocks = list(acts.names)
print("blocks:", {name: acts[name].shape for name in blocks},
      "tensor blocks:", tensor[SHOW_RANK].settings["tensor_blocks"])'''),
    md("""
## Error per block, parameters and time

One row per regime, rank and model. Parameters count every number of the model: F (images × rank) and the
loadings (matrix: features × rank per block; tensor: (channels + positions) × rank per tensor block).
Seconds are those of each fit (warm-started from the rank before).
"""),
    code('''\
def n_params(fit):
    return fit.F.size + sum(W.size for W in fit.loadings.values()) + sum(S.size for S in (fit.spatial or {}).values())


header = ["training", "rank", "model", "RMSE", *[f"rel. err. {b}" for b in blocks], "parameters", "seconds"]
print(" | ".join(header))
for label, run in runs.items():
    for rank in RANKS:
        for kind in ("matrix", "tensor"):
            fit = run[kind][rank]
            cells = [label, str(rank), kind, f"{fit.rmse:.4f}", *[f"{fit.errors[b]:.3f}" for b in blocks],
                     f"{n_params(fit):,}", f"{fit.seconds:.1f}"]
            print(" | ".join(cells))
last = runs[list(runs)[-1]]
m, t = last["matrix"][SHOW_RANK], last["tensor"][SHOW_RANK]
for b in acts.layer_names:
    print(f"{b}: loadings {m.loadings[b].size:,} numbers in the matrix model, "
          f"{t.loadings[b].size + t.spatial[b].size:,} in the tensor model "
          f"({m.loadings[b].size / (t.loadings[b].size + t.spatial[b].size):.1f}x fewer); "
          f"relative error {m.errors[b]:.3f} -> {t.errors[b]:.3f}")
print(f"whole model at rank {SHOW_RANK}: {n_params(m):,} against {n_params(t):,} parameters "
      f"(F alone: {m.F.size:,})")'''),
    md("""
## Does the tensor model order the regimes as the matrix model does?

At each rank, the regimes sorted by RMSE (lowest first) under each model. The paper's finding for the matrix
model is *less training data, lower RMSE*; the cell prints whether the tensor model gives the same order.
"""),
    code('''\
same = 0
for rank in RANKS:
    order = {kind: sorted(runs, key=lambda label: runs[label][kind][rank].rmse) for kind in ("matrix", "tensor")}
    agree = order["matrix"] == order["tensor"]
    same += agree
    print(f"rank {rank}: matrix {' < '.join(order['matrix'])}  |  tensor {' < '.join(order['tensor'])}  "
          f"-> {'same order' if agree else 'different order'}")
print(f"same order at {same} of {len(RANKS)} ranks")'''),
    md("""
## The spatial maps

Each tensor factor's spatial map of `relu` (12 × 12) and `relu_1` (4 × 4), folded from
`fit.spatial[name]` (`tensor_spatial_maps`), for the least and the most trained network at the rank shown
(each map scaled to its maximum; the first 12 factors drawn). The cell prints how concentrated the maps
are: the share of positions that holds half of each map's mass (median over factors), compared with the
share an even map would need (50 %).
"""),
    code('''\
def half_mass_share(maps):
    flat = np.sort(maps.reshape(len(maps), -1), axis=1)[:, ::-1]
    cum = np.cumsum(flat, axis=1) / np.maximum(flat.sum(1, keepdims=True), 1e-12)
    return ((cum < 0.5).sum(1) + 1) / flat.shape[1]


pick = [list(runs)[0], list(runs)[-1]]
rows, labels = [], []
for label in pick:
    fit = runs[label]["tensor"][SHOW_RANK]
    for layer in acts.layer_names:
        maps = tensor_spatial_maps(fit, layer)
        share = half_mass_share(maps)
        print(f"{label}, {layer} ({maps.shape[1]} x {maps.shape[2]}): half of each map's mass on "
              f"{np.median(share):.0%} of the positions (median over factors; min {share.min():.0%}, "
              f"max {share.max():.0%})")
        rows.append(list(maps[:12] / np.maximum(maps[:12].max((1, 2), keepdims=True), 1e-12)))
        labels.append(f"{label}\\n{layer}")
fig = image_grid(rows, row_labels=labels, cmap="viridis", size=1.0)'''),
    md("""
In the matrix model the same factor is a (channels · positions) vector: ten 12 × 12 maps per factor for
`relu`, one per channel. The tensor model says it with one map and one channel pattern; the channel patterns
(`fit.loadings["relu"]`, channels × factors) of the most trained network, each factor scaled to its largest
channel, as a picture (rows: channels, columns: factors) and as the three largest channels of each factor:
"""),
    code('''\
fit = runs[pick[-1]]["tensor"][SHOW_RANK]
C = fit.loadings["relu"] / np.maximum(fit.loadings["relu"].max(0, keepdims=True), 1e-12)
for k in range(fit.rank):
    top = np.argsort(-C[:, k])[:3]
    print(f"factor {k:2d}: channels " + ", ".join(f"{c} ({C[c, k]:.2f})" for c in top))
fig, ax = plt.subplots(figsize=(0.25 * fit.rank + 1, 0.25 * len(C) + 0.6))
ax.imshow(C, cmap="viridis", vmin=0, vmax=1)
ax.set_xlabel("factor"); ax.set_ylabel("channel of relu")
fig.tight_layout()'''),
    md("""
## RMSE against rank, both models

The RMSE curves of every network under both models in one chart (`Compare`).
"""),
    code('''\
from peeklens.widgets import Compare

Compare({f"{label} {kind}": run[kind] for label, run in runs.items() for kind in ("matrix", "tensor")})'''),
])


def main(numbers: dict[str, str] | None = None) -> None:
    numbers = numbers or {}
    for name, book in NB.items():
        for i, c in enumerate(book.cells):
            c.id = f"{name[:2]}-{i:02d}"  # stable ids: regenerating changes only what changed
            if c.cell_type == "markdown":
                for key, text in numbers.items():
                    c.source = c.source.replace(key, text)
                for key in ("NUMBERS_QUICKSTART", "NUMBERS_FRACTION", "NUMBERS_SUBSET", "NUMBERS_ORDERED",
                            "NUMBERS_ALEXNET"):
                    c.source = c.source.replace(key, "(not yet measured)")
        nbformat.validate(book)
        nbformat.write(book, HERE / name)


if __name__ == "__main__":
    import json
    import sys

    main(json.loads(Path(sys.argv[1]).read_text()) if len(sys.argv) > 1 else None)
