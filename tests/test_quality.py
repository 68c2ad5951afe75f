"""The code base stays lint-clean and type-clean: ruff and mypy --strict run with the tests."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed (pip install ruff)")
def test_ruff_is_clean() -> None:
    proc = subprocess.run(["ruff", "check", "."], cwd=REPO, capture_output=True, text=True,
                          check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.timeout(600)
def test_mypy_strict_is_clean() -> None:
    pytest.importorskip("mypy", reason="mypy not installed (pip install mypy)")
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True,
                          text=True, check=False, timeout=590)
    assert proc.returncode == 0, proc.stdout + proc.stderr
