"""A tiny vision transformer on MNIST patches, trained (or loaded from the cache) in minutes on a CPU.

Used by the transformer tutorial (``notebooks/06-transformer.ipynb``): its MLP and attention outputs are
signed (GELU, residual stream), one row per token, so they exercise ``pl.capture(..., samples="tokens",
nonneg="semi")``.  Token 0 is the class token, token ``1 + i`` the image patch ``i`` (row-major over the
``28 / patch`` × ``28 / patch`` grid of the image), as in torchvision's ViT.

>>> import torch
>>> model = TinyViT(dim=16, depth=1, heads=2)
>>> model(torch.zeros(3, 1, 28, 28)).shape
torch.Size([3, 10])
>>> model.blocks[0].mlp(torch.zeros(3, model.n_tokens, 16)).shape
torch.Size([3, 50, 16])
>>> patch_box(1 + 8, patch=4, image_size=28)    # patch 8: second row, second column
(4, 4, 8, 8)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import InputError
from .data import load_mnist, normalize
from .training import cache_dir, run_batches, save_checkpoint

__all__ = ["TinyViT", "ViTConfig", "TrainedViT", "train_vit", "patch_box"]

log = logging.getLogger(__name__)


class SelfAttention(nn.Module):
    """Multi-head self-attention returning one (batch, tokens, dim) tensor (the output projection's)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise InputError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """A pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))`` (GELU MLP)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """A small ViT for 28 × 28 grayscale digits: patch embedding, class token, ``depth`` blocks, linear head.

    Parameters
    ----------
    patch : int, default 4
        Side of the square patches (must divide ``image_size``); 4 gives 7 × 7 = 49 patches + 1 class token.
    dim, depth, heads, mlp_dim : int
        Width, number of blocks, attention heads and hidden width of each block's MLP.
    image_size, channels, classes : int
        Input side and channels, number of classes.

    Capturable modules (names for ``pl.capture``): ``blocks.{i}.attn`` and ``blocks.{i}.mlp`` give
    (batch, tokens, dim) outputs; ``blocks.{i}`` the residual stream after block ``i``.

    Examples
    --------
    >>> import torch
    >>> TinyViT()(torch.rand(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        patch: int = 4,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        mlp_dim: int = 128,
        image_size: int = 28,
        channels: int = 1,
        classes: int = 10,
    ) -> None:
        super().__init__()
        if image_size % patch:
            raise InputError(f"patch ({patch}) must divide image_size ({image_size})")
        self.patch, self.image_size = patch, image_size
        self.grid = image_size // patch
        self.n_tokens = self.grid**2 + 1
        self.embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, self.n_tokens, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2)  # (batch, patches, dim)
        t = torch.cat([self.cls.expand(len(t), -1, -1), t], dim=1) + self.pos
        for block in self.blocks:
            t = block(t)
        return self.head(self.norm(t[:, 0]))


def patch_box(position: int, patch: int = 4, image_size: int = 28) -> tuple[int, int, int, int] | None:
    """Pixel box ``(top, left, bottom, right)`` of token ``position`` (0: the class token, which has none).

    >>> patch_box(0) is None
    True
    >>> patch_box(49)      # the last patch of the 7 x 7 grid
    (24, 24, 28, 28)
    """
    if position == 0:
        return None
    grid = image_size // patch
    i = int(position) - 1
    if not 0 <= i < grid * grid:
        raise InputError(f"token position {position} is outside 0..{grid * grid} for a {grid} x {grid} patch grid")
    r, c = divmod(i, grid)
    return r * patch, c * patch, (r + 1) * patch, (c + 1) * patch


@dataclass(frozen=True)
class ViTConfig:
    """What a :class:`TinyViT` is trained on, and how (every field enters the cache key)."""

    train_samples: int | None = None
    epochs: float = 2
    seed: int = 0
    lr: float = 3e-3
    batch_size: int = 128
    patch: int = 4
    dim: int = 64
    depth: int = 2
    heads: int = 4
    mlp_dim: int = 128

    def key(self) -> str:
        """A file-name-safe key of the settings."""
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]
        return f"tinyvit-mnist-{digest}"

    def build(self) -> TinyViT:
        """A new (untrained) network of this shape."""
        return TinyViT(patch=self.patch, dim=self.dim, depth=self.depth, heads=self.heads, mlp_dim=self.mlp_dim)


@dataclass
class TrainedViT:
    """A trained :class:`TinyViT` (in eval mode), its settings, checkpoint and whether it came from the cache."""

    model: TinyViT
    config: ViTConfig
    path: os.PathLike | None
    cached: bool
    final_loss: float


def train_vit(
    config: ViTConfig | None = None,
    *,
    data: tuple[torch.Tensor, torch.Tensor] | None = None,
    cache: str | os.PathLike | None | bool = None,
    progress: bool = True,
) -> TrainedViT:
    """Train a :class:`TinyViT` on MNIST with AdamW and a cosine schedule, or load it from the cache.

    Parameters
    ----------
    config : ViTConfig, optional
        Settings (default ``ViTConfig()``: all 60,000 training images, 2 epochs; a few minutes on 2 cores).
    data : (images, labels), optional
        Training images in [0, 1], (N, 1, 28, 28); default: MNIST's training set (``$PEEKLENS_DATA``).
        Checkpoints are cached only for the default data.
    cache : path, False or None
        Checkpoint directory (default :func:`peeklens.studies.cache_dir`); ``False`` never reads or writes one.
    progress : bool, default True
        A progress bar over training batches.

    Returns
    -------
    TrainedViT

    Examples
    --------
    >>> import torch
    >>> x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    >>> t = train_vit(ViTConfig(epochs=1, dim=16, depth=1, heads=2), data=(x, y), cache=False, progress=False)
    >>> t.model.training, t.cached
    (False, False)
    """
    cfg = config or ViTConfig()
    if not float(cfg.epochs) > 0:
        raise InputError(f"epochs must be > 0, got {cfg.epochs!r}")
    path = None
    if cache is not False and data is None:
        path = cache_dir(cache if cache not in (None, True) else None) / f"{cfg.key()}.pt"
        if path.exists():
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                model = cfg.build()
                model.load_state_dict(state["model"])
                return TrainedViT(model.eval(), cfg, path, True, float(state["final_loss"]))
            except Exception as exc:  # a broken cache file: train again
                log.warning("ignoring unreadable checkpoint %s (%s)", path, exc)
    x, y = data if data is not None else load_mnist(train=True)
    if cfg.train_samples is not None:
        x, y = x[: int(cfg.train_samples)], y[: int(cfg.train_samples)]
    torch.manual_seed(cfg.seed)
    model = cfg.build()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.05)
    n_batches = int(np.ceil(len(x) / cfg.batch_size))
    total = max(1, int(round(n_batches * float(cfg.epochs))))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=0.1)
    gen = torch.Generator().manual_seed(cfg.seed)

    def orders():  # a fresh shuffle for every pass, as many passes as the batches need
        while True:
            yield torch.randperm(len(x), generator=gen)

    def step(sel: torch.Tensor) -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(normalize(x[sel], "mnist")), y[sel])
        loss.backward()
        opt.step()
        sched.step()
        return loss

    model.train()
    last = run_batches(orders(), cfg.batch_size, total, step, desc="train TinyViT", progress=progress)
    model.eval()
    final = float(np.mean(last[-20:]))
    if path is not None:
        save_checkpoint(path, model, final_loss=final)
    return TrainedViT(model, cfg, path, False, final)
