"""The README's quick start: `make demo` installs only what convohook runs on (a newcomer waits
for no dev tools), `make test` the dev tools as well. Checked with `make -n` on a venv that does
not exist yet, so nothing is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _planned(target: str, venv: Path) -> list[str]:
    # Under `make test` (CI) this make is a sub-make: without the parent's variables it plans
    # as a newcomer's would, and prints no "Entering/Leaving directory" lines.
    environment = {
        k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    }
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )
    return result.stdout.splitlines()


def test_make_demo_installs_the_runtime_only_and_says_so(tmp_path: Path) -> None:
    venv = tmp_path / "venv"

    plan = _planned("demo", venv)

    installs = [line for line in plan if " install " in line]
    assert installs == [f"{venv}/bin/pip install --disable-pip-version-check -e ."], plan
    assert not any("--quiet" in line for line in plan), plan  # pip shows its progress
    assert any(line.startswith('echo "==> installing convohook') for line in plan), plan
    assert plan[-1] == f"{venv}/bin/convohook demo"


def test_make_test_installs_the_dev_tools(tmp_path: Path) -> None:
    plan = _planned("test", tmp_path / "venv")

    assert any(line.endswith("install --quiet -e '.[dev]'") for line in plan), plan
    assert not any(line.endswith("install --disable-pip-version-check -e .") for line in plan)
