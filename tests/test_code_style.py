"""The code stays ruff-clean (PEP 8, imports, formatting; pyproject.toml)."""

import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PATHS = ["remax_tf", "trainer", "tests", "benchmarks", "protos", "setup.py"]


@pytest.mark.slow  # runs ruff in a subprocess
@pytest.mark.parametrize(
    "command", [["check"], ["format", "--check"]], ids=["lint", "format"]
)
def test_ruff(command):
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *PATHS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (
        f"ruff {' '.join(command)} found problems (fix: make lint):\n{done.stdout}{done.stderr}"
    )
