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
from cxrdata_testing import build_with, read_records

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
    while proc.poll() is None and not list((out / "tasks" / "mimic").glob("*.json")):
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
    markers = sorted((out / "tasks" / "mimic").glob("*.json"))
    markers[0].unlink()
    (out / "manifest.json").unlink()
    shard = next((out / "data" / "mimic").glob(f"{markers[0].stem}-of-*.parquet"))  # that task's shard
    shard.with_name(shard.name + ".tmp").write_bytes(b"partial garbage")
    run(mimic_sample.root, out)
    assert read_records(out, "mimic") == expected
    assert not list(out.rglob("*.tmp"))


def test_a_second_concurrent_build_on_the_same_out_is_refused(mimic_sample, tmp_path):
    import fcntl

    from cxrdata.errors import CxrdataError

    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".cxrdata.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(CxrdataError, match="another cxrdata build"):
            build_with("mimic", out, root=mimic_sample.root)


# -- every dataset, killed at 20 random moments ---------------------------------------------------------------

def dataset_command(dataset: str, out: Path) -> tuple[list[str], list[str]]:
    """The build command of a bundled sample, and the configs it writes (small images, several tasks)."""
    from cxrdata.api import bundled_root

    roots = {
        "vindr": (["--root", str(bundled_root("vindr"))], ["vindr"]),
        "padchest-gr": (["--root", str(bundled_root("padchest-gr"))], ["padchest-gr"]),
        "imagenome": (["--root", str(bundled_root("imagenome") / "chest-imagenome-dataset-1.0.0"), "--mimic-root",
                       str(bundled_root("imagenome") / "mimic-cxr-jpg")], ["imagenome-gold", "imagenome-silver"]),
    }
    extra, configs = roots[dataset]
    return ([sys.executable, "-m", "cxrdata.cli", "build", dataset, *extra, "--out", str(out), "--workers", "2",
             "--tasks", "5", "--image-size", "96", "--quiet", "--max-reject-share", "1"], configs)


def image_digests(records: dict[str, dict]) -> dict[str, str]:
    import hashlib

    return {i: hashlib.sha256((r["image"] or {}).get("bytes") or b"").hexdigest() for i, r in records.items()}


@pytest.mark.parametrize("dataset", ["vindr", "padchest-gr", "imagenome"])
def test_twenty_random_kills_lose_duplicate_and_change_nothing(dataset, tmp_path):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    ref_cmd, configs = dataset_command(dataset, reference)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    started = time.monotonic()
    subprocess.run(ref_cmd, check=True, timeout=300, env=env, stdout=subprocess.DEVNULL)
    duration = time.monotonic() - started
    cmd, _ = dataset_command(dataset, resumed)
    rng = random.Random(hash(dataset) % 1000)
    kills = 0
    for _ in range(20):
        proc = subprocess.Popen(cmd, start_new_session=True, env=env, stdout=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.8) * duration)  # later runs have less left to do: kill them early
        kills += kill(proc)
    assert kills >= 3, f"only {kills} of 20 runs were still going when killed"
    subprocess.run(cmd, check=True, timeout=300, env=env, stdout=subprocess.DEVNULL)
    for config in configs:
        expected, got = read_records(reference, config), read_records(resumed, config)
        assert set(got) == set(expected), "no record lost or added"
        assert image_digests(got) == image_digests(expected)
        assert got == expected
    assert json.loads((resumed / "manifest.json").read_text()) == json.loads((reference / "manifest.json").read_text())
    assert not list(resumed.rglob("*.tmp"))
