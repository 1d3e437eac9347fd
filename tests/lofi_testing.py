"""Fixtures shared by the LoFi tests (import the ``*_fixture`` names): sample shards (mimic + ms-cxr), one tiny
4-step run, one intra-op thread."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from cxrdata.api import plans as plan_of_all
from cxrdata.cli import main
from cxrdata.pipeline.build import BuildOptions, build
from cxrdata.sample.mimic import MimicSample

STEPS = 4
# Each test module that imports a fixture registers its own copy, and pytest caches session fixtures per copy:
# this cache (keyed by the session's base temp folder) makes the shards and the run once per session.
_ONCE: dict[tuple[str, Path], object] = {}


@contextmanager
def single_thread() -> Iterator[None]:
    """Tiny tensors: intra-op threads only add contention (many times slower on a loaded 2-core machine).
    Every LoFi run of the tests uses it, so float results do not depend on the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="module", name="one_thread")
def one_thread_fixture() -> Iterator[None]:
    with single_thread():
        yield


@pytest.fixture(scope="session", name="lofi_shards")
def lofi_shards_fixture(mimic_sample: MimicSample, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mimic (image-report pairs) and ms-cxr 1.1.0 (phrase + boxes) of the sample, 128 px JPEG."""
    key = ("shards", tmp_path_factory.getbasetemp())
    if key in _ONCE:
        return _ONCE[key]  # type: ignore[return-value]
    out = tmp_path_factory.mktemp("lofi-shards") / "out"
    plans = [*plan_of_all("mimic", out=out, root=mimic_sample.root, image_size=128),
             *plan_of_all("ms-cxr", out=out, root=mimic_sample.mscxr_csv["1.1.0"].parent, mimic_root=mimic_sample.root,
                          image_size=128)]
    build(plans, BuildOptions(out=out, workers=1, quiet=True))  # one OUT, two configs; no worker start-up cost
    _ONCE[key] = out
    return out


@dataclass(frozen=True)
class TinyRun:
    run: Path
    data: Path
    output: str


@pytest.fixture(scope="session", name="lofi_tiny_run")
def lofi_tiny_run_fixture(lofi_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """`cxrdata train lofi --tiny --max-steps 4` through the CLI."""
    key = ("run", tmp_path_factory.getbasetemp())
    if key in _ONCE:
        return _ONCE[key]  # type: ignore[return-value]
    run = tmp_path_factory.mktemp("lofi-run") / "run"
    with single_thread():
        result = CliRunner().invoke(main, ["train", "lofi", "--tiny", "--data", str(lofi_shards), "--run", str(run),
                                           "--max-steps", str(STEPS), "--quiet", "--device", "cpu"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    _ONCE[key] = TinyRun(run, lofi_shards, result.output)
    return _ONCE[key]  # type: ignore[return-value]


def torchrun_example(command: str, values: Mapping[str, str]) -> list[str]:
    """The ``torchrun`` example of ``cxrdata <command> --help`` as an argv, its placeholders replaced by ``values``
    (N, OUT, RUN, ...), run with this interpreter's torchrun (the same parser as the ``torchrun`` script)."""
    result = CliRunner().invoke(main, [*command.split(), "--help"], terminal_width=200)
    lines = result.output.splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip().startswith("torchrun "))
    text = " ".join(line.strip() for line in lines[first:lines.index("", first)])
    argv = [values.get(word, word) for word in shlex.split(text)]
    return [sys.executable, "-m", "torch.distributed.run", *argv[1:]]


def run_torchrun(argv: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run a torchrun argv on the CPU (gloo), this checkout first on the path; its output is returned."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
