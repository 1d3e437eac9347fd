"""Subsets of a download (``--limit``, ``--subjects``, ``--splits``): whole patients, counted, recorded, refused."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from cxrdata_testing import build_with, metadata

from cxrdata.cli import main
from cxrdata.errors import CxrdataError

PATH_MODE = {"image_format": "path", "max_reject_share": 1}


def _rows(out: Path, config: str = "mimic") -> list[dict]:
    """(id, split) of every written and rejected record of a config, via pyarrow."""
    rows = []
    for folder, key in (("data", "id"), ("rejects", "record_id")):
        for path in sorted((out / folder / config).glob("*.parquet")):
            table = pq.read_table(path, columns=[key, "split"])
            rows += [{"id": r[key], "split": r["split"]} for r in table.to_pylist()]
    return rows


def _manifest(out: Path, config: str = "mimic") -> dict:
    return json.loads((out / "manifest.json").read_text())["configs"][config]


@pytest.fixture(scope="module")
def subject_of(mimic_sample) -> dict[str, str]:
    """dicom_id (a MIMIC record's id) -> subject_id, from the sample's metadata CSV."""
    table = metadata(mimic_sample)
    return dict(zip(table["dicom_id"], table["subject_id"], strict=True))


def _subjects(out: Path, subject_of: dict[str, str]) -> set[str]:
    return {subject_of[r["id"]] for r in _rows(out)}


@pytest.fixture(scope="module")
def whole(mimic_sample, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("subset-whole") / "out"
    build_with("mimic", out, root=mimic_sample.root, **PATH_MODE)
    return out


def test_limit_keeps_whole_patients_the_same_ones_each_run_and_nested(mimic_sample, whole, subject_of, tmp_path):
    read_all = _manifest(whole)["counts"]["total"]["read"]
    kept = {}
    for n in (2, 5):
        out = tmp_path / f"limit{n}"
        build_with("mimic", out, root=mimic_sample.root, limit=n, **PATH_MODE)
        kept[n] = _subjects(out, subject_of)
        manifest = _manifest(out)
        read = manifest["counts"]["total"]["read"]
        assert len(kept[n]) == n and manifest["options"]["limit"] == n
        assert read + manifest["excluded"]["beyond_limit"] == read_all  # nothing lost: read or counted
        whole_ids = {r["id"] for r in _rows(whole) if subject_of[r["id"]] in kept[n]}
        assert {r["id"] for r in _rows(out)} == whole_ids  # every record of a kept patient, nothing else
    assert kept[2] < kept[5]
    again = tmp_path / "again"
    build_with("mimic", again, root=mimic_sample.root, limit=2, **PATH_MODE)
    assert _subjects(again, subject_of) == kept[2]


def test_subjects_file_keeps_those_patients_and_reports_unknown_keys(mimic_sample, whole, subject_of, tmp_path):
    chosen = sorted(_subjects(whole, subject_of))[:2]
    listing = tmp_path / "subjects.txt"
    listing.write_text(f"# two patients\n{chosen[0]}\n\n{chosen[1]}  # the second\n99999999\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", "mimic", "--root", str(mimic_sample.root), "--out", str(out),
                                       "--subjects", str(listing), "--image-format", "path", "--workers", "1",
                                       "--max-reject-share", "1"])
    assert result.exit_code == 0, result.output
    assert "1 of the 3 keys of --subjects name no record (e.g. 99999999)" in " ".join(result.output.split())
    assert _subjects(out, subject_of) == set(chosen)
    shown = _manifest(out)["options"]["subjects"]
    assert shown["keys"] == 3 and shown["file"] == str(listing.resolve()) and len(shown["sha256"]) == 64
    assert _manifest(out)["excluded"]["not_in_subjects"] > 0


def test_a_subjects_file_of_no_known_key_is_one_error_line(mimic_sample, tmp_path):
    listing = tmp_path / "other.txt"
    listing.write_text("p10000032\np10000033\n")  # MIMIC's folder names, not subject ids
    result = CliRunner().invoke(main, ["build", "mimic", "--root", str(mimic_sample.root), "--out",
                                       str(tmp_path / "out"), "--subjects", str(listing), "--workers", "1"])
    assert result.exit_code == 2
    assert "none of its 2 keys is a patient (partition key) of mimic" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_splits_keep_those_splits_with_aliases_and_count_the_rest(mimic_sample, whole, tmp_path):
    out = tmp_path / "out"
    build_with("mimic", out, root=mimic_sample.root, splits="test,validate", **PATH_MODE)
    manifest = _manifest(out)
    assert set(manifest["counts"]["splits"]) - {"unknown"} == {"test", "validation"}  # no split: still rejected
    assert manifest["options"]["splits"] == ["test", "validation"]
    train = _manifest(whole)["counts"]["splits"]["train"]["read"]
    assert manifest["excluded"]["split_not_selected"] == train
    wanted = ("test", "validation", "unknown", None)
    assert {r["id"] for r in _rows(out)} == {r["id"] for r in _rows(whole) if r["split"] in wanted}


def test_an_unknown_split_is_refused_before_anything_is_read(mimic_sample, tmp_path):
    with pytest.raises(CxrdataError, match="--splits dev2: mimic has the splits test, train, validation"):
        build_with("mimic", tmp_path / "out", root=mimic_sample.root, splits="train,dev2", **PATH_MODE)
    assert not (tmp_path / "out").exists()


def test_vindr_gives_splits_to_its_reader(tmp_path):
    from cxrdata.sample.vindr import write_vindr_sample

    sample = write_vindr_sample(tmp_path / "vindr", seed=0)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", "vindr", "--root", str(sample.root), "--out", str(out), "--splits",
                                       "test", "--image-format", "path", "--workers", "1", "--max-reject-share", "1"])
    assert result.exit_code == 0, result.output
    manifest = _manifest(out, "vindr")
    assert set(manifest["counts"]["splits"]) == {"test"} and manifest["options"]["splits"] == ["test"]
    assert manifest["excluded"]["image_in_other_split"] > 0


def test_a_config_none_of_whose_splits_is_selected_is_not_built(tmp_path):
    from cxrdata.api import plans
    from cxrdata.sample.imagenome import write_imagenome_sample

    write_imagenome_sample(tmp_path / "ig", seed=0)
    found = plans("imagenome", out=tmp_path / "out", root=tmp_path / "ig", mimic_root=tmp_path / "ig" / "mimic-cxr-jpg",
                  splits="train")
    assert [p.config for p in found] == ["imagenome-silver"]
    assert any("not built: imagenome-gold" in n for n in found[0].notices)


def test_another_subset_in_the_same_out_is_refused(mimic_sample, tmp_path):
    out = tmp_path / "out"
    build_with("mimic", out, root=mimic_sample.root, limit=2, **PATH_MODE)
    with pytest.raises(CxrdataError, match=r"(?i)configuration"):
        build_with("mimic", out, root=mimic_sample.root, limit=3, **PATH_MODE)
