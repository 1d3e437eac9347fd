"""A build killed with SIGKILL at any moment, then rerun, gives exactly the uninterrupted records."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cxrdata_testing import read_records

pytestmark = pytest.mark.slow


def command(root: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "cxrdata.cli", "build", "mimic", "--root", str(root), "--out", str(out),
            "--workers", "2", "--tasks", "6", "--quiet"]


def run(root: Path, out: Path) -> None:
    subprocess.run(command(root, out), check=True, timeout=300, env={**os.environ, "PYTHONPATH": os.getcwd()})


def start(root: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(command(root, out), start_new_session=True, env={**os.environ, "PYTHONPATH": os.getcwd()})


def kill(proc: subprocess.Popen) -> bool:
    """SIGKILL the build and its workers; True when it was still running."""
    running = proc.poll() is None
    if running:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return running


def killed_runs(root: Path, out: Path, delays: list[float]) -> int:
    """Kill a first run as soon as one task has finished (surely mid-build), then further runs after
    random delays (anywhere: planning, mid-task, between rename and marker); returns the kills."""
    proc = start(root, out)
    while proc.poll() is None and not list((out / "tasks" / "mimic").glob("0*.json")):
        time.sleep(0.01)
    kills = int(kill(proc))
    for delay in delays:
        proc = start(root, out)
        time.sleep(delay)
        kills += kill(proc)
    return kills


def test_killed_and_rerun_build_equals_uninterrupted_build(mimic_sample, tmp_path):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    run(mimic_sample.root, reference)
    rng = random.Random(1234)
    kills = killed_runs(mimic_sample.root, resumed, [rng.uniform(0.3, 3.0) for _ in range(3)])
    assert kills >= 1, "at least one build was killed mid-way"
    run(mimic_sample.root, resumed)

    assert read_records(resumed, "mimic") == read_records(reference, "mimic")
    manifest = json.loads((resumed / "manifest.json").read_text())
    assert manifest == json.loads((reference / "manifest.json").read_text())
    assert not list(resumed.rglob("*.tmp")), "no temporary file survives the finished rerun"
    rejects = sorted(p.name for p in (resumed / "rejects" / "mimic").glob("*.parquet"))
    assert rejects == sorted(p.name for p in (reference / "rejects" / "mimic").glob("*.parquet"))


def test_kill_between_shard_rename_and_marker_is_redone(mimic_sample, tmp_path):
    """The narrowest window: a task's shards are in place but its marker is not."""
    out = tmp_path / "out"
    run(mimic_sample.root, out)
    expected = read_records(out, "mimic")
    markers = sorted((out / "tasks" / "mimic").glob("0*.json"))
    markers[0].unlink()
    (out / "manifest.json").unlink()
    (out / "data" / "mimic" / "train-00000-of-00006.parquet.tmp").write_bytes(b"partial garbage")
    run(mimic_sample.root, out)
    assert read_records(out, "mimic") == expected
    assert not list(out.rglob("*.tmp"))


def test_a_second_concurrent_build_on_the_same_out_is_refused(mimic_sample, tmp_path):
    import fcntl

    from cxrdata.errors import CxrdataError
    from cxrdata.pipeline.build import BuildOptions, build
    from cxrdata.sources.mimic import MimicSource

    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".cxrdata.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(CxrdataError, match="another cxrdata build"):
            build([MimicSource(root=mimic_sample.root)], BuildOptions(out=out, workers=1, quiet=True))
