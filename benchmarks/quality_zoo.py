"""Calibration zoo of pl.quality (see docs/quality.md). Filled in below."""
from __future__ import annotations

import argparse
import sys
import time

import torch


def train_all(args) -> None:
    from peeklens.studies import load_dataset, train
    from peeklens.studies.zoo import zoo_regimes

    data = {}
    zoo = zoo_regimes()
    for i, (group, reg) in enumerate(zoo):
        if reg.dataset not in data:
            data[reg.dataset] = load_dataset(reg.dataset, True)
        t = time.perf_counter()
        tm = train(reg, data=data[reg.dataset], progress=False)
        print(f"[{i + 1}/{len(zoo)}] {group}: {reg.label} seed {reg.seed} "
              f"({'cached' if tm.cached else f'{time.perf_counter() - t:.1f} s'})", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    p = argparse.ArgumentParser()
    p.add_argument("--train-only", action="store_true")
    a = p.parse_args()
    train_all(a)
