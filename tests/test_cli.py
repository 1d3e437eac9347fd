"""The command line: one clear line and exit status 2 for bad input, never a traceback."""

from __future__ import annotations

import gzip
import shutil

import polars as pl
import pytest
from click.testing import CliRunner
from cxrdata_testing import expected_rejects

from cxrdata.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def broken_copy(mimic_sample, tmp_path):
    """A copy of the sample's CSVs (images and reports linked), to break one thing at a time."""
    root = tmp_path / "mimic"
    root.mkdir()
    for path in mimic_sample.root.glob("*.csv*"):
        shutil.copy(path, root / path.name)
    (root / "files").symlink_to(mimic_sample.root / "files")
    return root


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    line = result.output.strip()
    assert line.startswith("error:") and len(line.splitlines()) <= 2, line
    for needle in needles:
        assert needle in line


def test_missing_root(tmp_path):
    result = invoke("build", "mimic", "--root", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "does not exist")


def test_missing_required_file(broken_copy, tmp_path):
    (broken_copy / "mimic-cxr-2.0.0-split.csv.gz").unlink()
    result = invoke("build", "mimic", "--root", str(broken_copy), "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "mimic-cxr-2.0.0-split.csv.gz")


def test_csv_with_a_missing_column(broken_copy, tmp_path):
    path = broken_copy / "mimic-cxr-2.0.0-metadata.csv.gz"
    frame = pl.read_csv(path, infer_schema=False).drop("ViewPosition")
    with gzip.open(path, "wb") as fh:
        frame.write_csv(fh)
    result = invoke("build", "mimic", "--root", str(broken_copy), "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "missing column(s) ViewPosition")


def test_root_and_sample_together_are_refused(tmp_path):
    result = invoke("build", "mimic", "--root", str(tmp_path), "--sample", "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "not both")


def test_a_changed_configuration_names_what_changed(mimic_sample, tmp_path):
    out = str(tmp_path / "out")
    assert invoke("build", "mimic", "--root", str(mimic_sample.root), "--out", out, "--workers", "1",
                  "--image-format", "path", "--quiet").exit_code == 0
    result = invoke("build", "mimic", "--root", str(mimic_sample.root), "--out", out, "--workers", "1",
                    "--image-format", "png", "--quiet")
    assert_one_line_error(result, "image_format", "--overwrite")


def test_build_prints_a_summary(mimic_sample, tmp_path):
    result = invoke("build", "mimic", "--root", str(mimic_sample.root), "--out", str(tmp_path / "o"),
                    "--workers", "1", "--image-format", "path")
    assert result.exit_code == 0
    reasons = set(expected_rejects(mimic_sample).values())
    for needle in ("records", "not written, by reason", "excluded (before the tasks", "view_not_selected",
                   "rejected (rejects/)", *reasons, "records/s", "output"):
        assert needle in result.output


def test_doctor_lists_present_missing_and_malformed(broken_copy, mimic_sample):
    (broken_copy / "mimic-cxr-2.0.0-chexpert.csv.gz").unlink()
    result = CliRunner().invoke(main, ["doctor", "mimic", "--root", str(broken_copy)])
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "mimic-cxr-2.0.0-chexpert.csv.gz" in out and "error" in out
    assert "rows; the full release has 377,110" in out  # a sample is not a full download
    healthy = CliRunner().invoke(main, ["doctor", "mimic", "--root", str(mimic_sample.root)])
    text = " ".join(healthy.output.split())
    assert "decodes" in text
    assert f"{mimic_sample.studies - 1:,} of {mimic_sample.studies:,} study reports present" in text  # one missing


def test_sample_data_writes_the_real_layout(tmp_path):
    result = invoke("sample-data", "mimic", "--out", str(tmp_path / "s"), "--seed", "3")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "mimic-cxr-2.0.0-metadata.csv.gz").is_file()
    assert list((tmp_path / "s" / "files").glob("p1?/p1*/s5*/*.jpg"))
