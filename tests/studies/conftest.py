"""Fixtures for the case-study tests: small real MNIST runs shared across the session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def study_cache(tmp_path_factory):
    """A checkpoint cache shared by every test of the session (never the user's ~/.cache)."""
    return tmp_path_factory.mktemp("peeklens-cache")


@pytest.fixture(scope="session")
def small_demo(study_cache, tmp_path_factory):
    """The demo study at a small size: 25 % / 100 % of the first 2,000 training images, 300 test images."""
    from peeklens.studies import run_study

    out = tmp_path_factory.mktemp("demo-out")
    res = run_study("demo", samples=300, ranks=[2, 4], train_samples=2000, cache=study_cache, out=out,
                    progress=False, max_iter=60)
    return res, out
