"""Fault suite, the output side: OUT folders cxrdata did not create, damaged resumes, impossible options,
builds that succeed at nothing, read-only and full disks, signals. Every case runs the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

import pytest
from cxrdata_testing import read_records, read_rejects
from faults import (
    assert_failed_cleanly,
    assert_ok,
    counts,
    cxrdata,
    remount,
    session_processes,
    start,
    tmpfs,
    wait_for,
)

pytestmark = pytest.mark.slow
FAST = ("--image-size", "64", "--workers", "2", "--tasks", "4", "--quiet")


def build(root: Path, out: Path, *extra: str):
    return cxrdata("build", "mimic", "--root", root, "--out", out, *FAST, *extra)


@pytest.fixture(scope="module")
def reference(mimic_sample, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "out"
    assert_ok(build(mimic_sample.root, out))
    return out


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def same_output(out: Path, reference: Path) -> None:
    assert read_records(out, "mimic") == read_records(reference, "mimic")
    assert read_rejects(out, "mimic") == read_rejects(reference, "mimic")
    assert counts(out) == counts(reference)
    assert not list(out.rglob("*.tmp"))


# -- OUT that cxrdata did not create ------------------------------------------------------------------------


def test_out_that_is_a_file_is_refused_and_kept(mimic_sample, tmp_path):
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    assert_failed_cleanly(build(mimic_sample.root, out), 2, "is a file")
    assert out.read_text() == "mine"


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_that_is_not_a_build_is_never_written(mimic_sample, tmp_path, overwrite):
    out = tmp_path / "mine"
    (out / "data").mkdir(parents=True)
    for name, text in (("README.md", "my notes"), ("manifest.json", "{}"), ("data/keep.csv", "a,b")):
        (out / name).write_text(text)
    before = tree_digest(out)
    line = assert_failed_cleanly(build(mimic_sample.root, out, *(["--overwrite"] if overwrite else [])), 2,
                                 str(out), "not a cxrdata build")
    assert "README.md" in line
    assert tree_digest(out) == before


def test_overwrite_removes_only_what_a_build_wrote(mimic_sample, reference, tmp_path):
    out = tmp_path / "out"
    assert_ok(build(mimic_sample.root, out))
    (out / "my-notes.txt").write_text("keep me")
    (out / "data" / "mimic" / "my-analysis.csv").write_text("keep me too")
    (out / "tasks" / "notes.md").write_text("and me")
    assert_ok(build(mimic_sample.root, out, "--overwrite", "--image-size", "32"))
    assert (out / "my-notes.txt").read_text() == "keep me"
    assert (out / "data" / "mimic" / "my-analysis.csv").read_text() == "keep me too"
    assert (out / "tasks" / "notes.md").read_text() == "and me"
    sizes = {max(r["image_width"], r["image_height"]) for r in read_records(out, "mimic").values()}
    assert sizes == {32}
    assert set(read_records(out, "mimic")) == set(read_records(reference, "mimic"))


# -- resume that trusts nothing ------------------------------------------------------------------------------


def test_a_deleted_or_damaged_shard_is_rebuilt(mimic_sample, reference, tmp_path):
    out = tmp_path / "out"
    assert_ok(build(mimic_sample.root, out))
    shards = sorted((out / "data" / "mimic").glob("train-*.parquet"))
    shards[0].unlink()
    shards[1].write_bytes(shards[1].read_bytes()[:100])  # same name, cut short
    rejects = sorted((out / "rejects" / "mimic").glob("*.parquet"))
    rejects[0].unlink()
    run = build(mimic_sample.root, out, "--quiet")
    assert_ok(run)
    same_output(out, reference)


def test_a_missing_card_or_manifest_is_rewritten(mimic_sample, reference, tmp_path):
    out = tmp_path / "out"
    assert_ok(build(mimic_sample.root, out))
    card = (out / "README.md").read_text()
    (out / "README.md").unlink()
    run = cxrdata("build", "mimic", "--root", mimic_sample.root, "--out", out, *FAST[:-1])
    assert_ok(run)
    assert "rewrote README.md" in run.output
    assert (out / "README.md").read_text() == card
    (out / "manifest.json").unlink()
    assert_ok(build(mimic_sample.root, out))
    same_output(out, reference)


def test_an_empty_build_json_left_by_a_crash_resumes(mimic_sample, reference, tmp_path):
    out = tmp_path / "out"
    assert_ok(build(mimic_sample.root, out))
    (out / "tasks" / "build.json").write_text("")
    next(iter(sorted((out / "tasks" / "mimic").glob("*.json")))).unlink()
    assert_ok(build(mimic_sample.root, out))
    same_output(out, reference)
    assert json.loads((out / "tasks" / "build.json").read_text())["hash"] == counts_hash(reference)


def counts_hash(out: Path) -> str:
    return json.loads((out / "manifest.json").read_text())["config_hash"]


def test_another_spelling_of_the_same_root_resumes(mimic_sample, reference, tmp_path):
    out = tmp_path / "out"
    assert_ok(build(mimic_sample.root, out))
    link = tmp_path / "link-to-mimic"
    link.symlink_to(mimic_sample.root)
    relative = os.path.relpath(mimic_sample.root, tmp_path)
    for root, cwd in ((link, None), (relative, tmp_path), (f"{mimic_sample.root}/", None)):
        run = cxrdata("build", "mimic", "--root", root, "--out", out, *FAST[:-1], cwd=cwd)
        assert_ok(run)
        assert "nothing to do" in run.output, run.output


# -- impossible options, builds that succeed at nothing ---------------------------------------------------


@pytest.mark.parametrize("option", [("--tasks", "-1"), ("--tasks", "0"), ("--workers", "0"),
                                    ("--max-reject-share", "1.5")])
def test_impossible_numbers_are_one_line(mimic_sample, tmp_path, option):
    run = cxrdata("build", "mimic", "--root", mimic_sample.root, "--out", tmp_path / "o", *option)
    assert run.code == 2 and "Traceback" not in run.output, run.output
    assert option[0] in run.output and not (tmp_path / "o").exists()


def test_a_build_that_writes_nothing_fails_after_writing_its_manifest(mimic_sample, tmp_path):
    empty_reports = tmp_path / "reports"
    (empty_reports / "files").mkdir(parents=True)
    out = tmp_path / "out"
    run = build(mimic_sample.root, out, "--reports-root", empty_reports)
    assert_failed_cleanly(run, 1, "config mimic wrote no rows", "report_missing")
    manifest = counts(out)["mimic"]["counts"]["total"]
    assert manifest["written"] == 0 and manifest["read"] == manifest["rejected"] > 0
    assert set(read_rejects(out, "mimic").values()) <= {"report_missing", "split_missing"}


def test_too_many_rejects_fail_the_build(mimic_sample, reference, tmp_path):
    out = tmp_path / "out"
    run = build(mimic_sample.root, out, "--max-reject-share", "0.01")
    assert_failed_cleanly(run, 1, "config mimic rejected", "--max-reject-share 0.01")
    same_output(out, reference)


# -- read-only and full disks ----------------------------------------------------------------------------


def test_read_only_out_and_read_only_parent(mimic_sample, tmp_path):
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        assert_failed_cleanly(build(mimic_sample.root, ro), 2, "read-only")
        assert_failed_cleanly(build(mimic_sample.root, ro / "sub" / "out"), 2, "read-only")


def test_a_full_disk_stops_in_one_line_and_the_rerun_finishes(mimic_sample, reference, tmp_path):
    with tmpfs(tmp_path / "small", "120k") as disk:
        out = disk / "out"
        assert_failed_cleanly(build(mimic_sample.root, out), 2, "no space left", "rerun the same command")
        remount(disk, "size=64m")
        assert_ok(build(mimic_sample.root, out))
        same_output(out, reference)


# -- signals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_build_in_one_line_and_leaves_no_worker(mimic_sample, reference, tmp_path,
                                                                   signum, code):
    out = tmp_path / "out"
    proc = start("build", "mimic", "--root", mimic_sample.root, "--out", out, *FAST)
    assert wait_for(lambda: len(session_processes(proc.pid)) >= 3 or proc.poll() is not None)
    if proc.poll() is None:
        if signum == signal.SIGINT:
            os.killpg(proc.pid, signum)  # Ctrl-C in a terminal signals the whole process group
        else:
            os.kill(proc.pid, signum)  # `kill PID`: the main process only
    output, _ = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the build finished before the signal arrived")
    assert proc.returncode == code, output
    assert "Traceback" not in output and "leaked" not in output, output
    assert "stopped; rerun the same command to resume" in output
    assert wait_for(lambda: not session_processes(proc.pid), timeout=10), "workers outlived the build"
    assert_ok(build(mimic_sample.root, out))
    same_output(out, reference)


@pytest.mark.parametrize("views", ["PA,LATRAL", "frontal", ","])
def test_a_view_typo_is_one_line_not_an_empty_build(mimic_sample, tmp_path, views):
    run = build(mimic_sample.root, tmp_path / "o", "--views", views)
    assert_failed_cleanly(run, 2, "--views", "known: PA, AP, LATERAL")
    assert not (tmp_path / "o").exists()


def test_views_are_case_insensitive(mimic_sample, reference, tmp_path):
    out = tmp_path / "out"
    assert_ok(build(mimic_sample.root, out, "--views", "pa, Ap"))
    same_output(out, reference)
