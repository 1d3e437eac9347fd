"""Every benchmark script still starts (its imports and argument parser work) and is listed in docs/benchmarks.md."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
LIBRARIES = {"measure.py", "mimic_tree.py"}  # imported by the scripts, not run


def scripts() -> list[Path]:
    return sorted(p for p in BENCHMARKS.glob("*.py") if p.name not in LIBRARIES)


def help_of(script: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


@pytest.mark.slow
def test_every_benchmark_script_runs_its_help() -> None:
    found = scripts()
    assert len(found) >= 15  # the folder was found and holds the scripts
    with ThreadPoolExecutor(4) as pool:
        done = dict(zip(found, pool.map(help_of, found), strict=True))
    failed = {p.name: d.stderr[-800:] for p, d in done.items() if d.returncode or not d.stdout.startswith("usage:")}
    assert failed == {}


def test_the_libraries_have_no_command_and_every_script_has_one() -> None:
    for path in BENCHMARKS.glob("*.py"):
        assert ('if __name__ == "__main__":' in path.read_text()) == (path.name not in LIBRARIES), path.name


def test_docs_list_every_benchmark() -> None:
    listed = (REPO / "docs" / "benchmarks.md").read_text()
    missing = [p.name for p in BENCHMARKS.glob("*.py") if f"`benchmarks/{p.name}`" not in listed]
    assert missing == []
