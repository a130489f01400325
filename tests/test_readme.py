"""The README's quickstart runs as written (real MNIST from $PEEKLENS_DATA, a real one-epoch training)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def quickstart_code() -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- quickstart[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert m, "README.md has no '<!-- quickstart -->' python block"
    return m.group(1)


def test_readme_names_both_commands_and_ci_calls_the_test_command():
    text = README.read_text(encoding="utf-8")
    assert "`bash scripts/demo.sh`" in text and "`bash scripts/test.sh`" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci


@pytest.mark.slow
def test_quickstart_runs_as_written(tmp_path):
    env = dict(os.environ, PEEKLENS_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-c", quickstart_code()], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the sweep table printed by the quickstart: five ranks, RMSE falling with rank
    rows = re.findall(r"^\s+(10|20|30|40|50)\s+([0-9.]+)", proc.stdout, re.M)
    assert [int(r) for r, _ in rows] == [10, 20, 30, 40, 50], proc.stdout
    rmse = [float(v) for _, v in rows]
    assert all(a > b for a, b in zip(rmse, rmse[1:])), rmse
    saved = tmp_path / "mnist-25pct.peeklens"
    assert saved.is_file() and saved.stat().st_size > 1_000_000
