"""Chest ImaGenome on a hostile download (gold and silver): every input id ends in the output, the
rejects or a counted exclusion; unreadable scene graphs are rejects; duplicated and conflicting gold
rows are counted; a null phrase never becomes "None"; broken CSVs are one error line (issue 12)."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from cxrdata_testing import METADATA_HEADER, build_with, read_records

from cxrdata.cli import main
from cxrdata.sample.imagenome import GOLD_ATTRIBUTES, GOLD_BOXES, ImagenomeSample, write_imagenome_sample
from cxrdata.sample.mimic import MimicSample
from cxrdata.sources.mimic import METADATA

SPLITS = {"train.csv": "train", "valid.csv": "validation", "test.csv": "test"}


@dataclass(frozen=True)
class Built:
    sample: ImagenomeSample
    mimic: MimicSample
    out: Path
    manifest: dict


def _build(sample: ImagenomeSample, mimic_root: Path, out: Path) -> dict:
    build_with("imagenome", out, root=sample.root, mimic_root=mimic_root, image_size=32, max_reject_share=1)
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module", params=[False, True], ids=["folder", "zip"])
def built(request: pytest.FixtureRequest, mimic_sample: MimicSample,
          tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("imagenome-faults")
    sample = write_imagenome_sample(base, mimic_root=mimic_sample.root, seed=0, faults=True, zipped=request.param)
    return Built(sample, mimic_sample, base / "out", _build(sample, mimic_sample.root, base / "out"))


@pytest.fixture(scope="module")
def hostile(mimic_sample: MimicSample, tmp_path_factory: pytest.TempPathFactory) -> ImagenomeSample:
    """The faults sample (scene-graph folder), not built: for the whole-input checks."""
    return write_imagenome_sample(tmp_path_factory.mktemp("imagenome-hostile"), mimic_root=mimic_sample.root, seed=0,
                                  faults=True)


def _rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


def _reject_rows(out: Path, config: str) -> dict[str, dict]:
    return {r["record_id"]: r for p in sorted((out / "rejects" / config).glob("*.parquet"))
            for r in pq.read_table(p).to_pylist()}


def _image_rejects(built: Built, ids: set[str]) -> dict[str, str]:
    reasons = {built.mimic.truncated_jpeg: "image_truncated", built.mimic.corrupt_jpeg: "image_corrupt"}
    return {i: r for i, r in reasons.items() if i in ids}


def test_gold_every_input_id_is_written_or_rejected(built: Built) -> None:
    sample, faults = built.sample, built.sample.faults
    boxes = _rows(sample.root / GOLD_BOXES)
    attributes = _rows(sample.root / GOLD_ATTRIBUTES, "\t")
    inputs = {r["image_id"].removesuffix(".dcm") for r in boxes + attributes}
    written, rejected = read_records(built.out, "imagenome-gold"), _reject_rows(built.out, "imagenome-gold")
    assert not set(written) & set(rejected) and set(written) | set(rejected) == inputs
    assert {i: r["reason"] for i, r in rejected.items()} == {faults["gold_bad_id"]: "unsafe_id",
                                                             **_image_rejects(built, inputs)}
    assert rejected[faults["gold_bad_id"]]["detail"] == "dicom_id '../evil' would name a path outside its folder"
    counts = built.manifest["configs"]["imagenome-gold"]["counts"]
    assert counts["splits"]["test"] == {"read": len(inputs), "written": len(written), "rejected": len(rejected)}
    assert counts["notes"] == {"gold_box_row_duplicate": 1, "region_box_conflict": 2, "attribute_row_duplicate": 1,
                               "attribute_conflict": 1, "attribute_sentence_missing": 1}


def test_gold_rows_duplicated_kept_once_and_conflicting_rejected(built: Built) -> None:
    sample, faults = built.sample, built.sample.faults
    written = read_records(built.out, "imagenome-gold")
    repeated = written[faults["gold_box_row_duplicate"]]
    assert len(repeated["regions"]) == len({r["label"] for r in repeated["regions"]}) == 26
    conflict = written[faults["gold_box_conflict"]]
    assert "trachea" not in {r["label"] for r in conflict["regions"]} and len(conflict["regions"]) == 25
    assert [(r["label"], r["reason"], r["detail"]) for r in conflict["rejected_regions"]] == [
        ("trachea", "box_conflict", "2 different rows for 'trachea'")] * 2
    tsv = _rows(sample.root / GOLD_ATTRIBUTES, "\t")
    first = tsv[0]
    clashing = next(r for r in tsv[2:4])  # rows 2 and 3: one attribute given with both contexts
    entries = written[faults["attribute_conflict"]]["sentence_regions"]
    entry = next(e for e in entries if (e["row_id"], e["label"]) == (clashing["row_id"], clashing["bbox"]))
    assert not any(a.endswith(f"|{clashing['label_name']}") for a in entry["attributes"])
    kept = f"{first['categoryID']}|{first['context']}|{first['label_name']}"
    assert next(e for e in entries if e["row_id"] == first["row_id"] and e["label"] == first["bbox"])[
        "attributes"].count(kept) == 1
    last = tsv[-1]  # its sentence cell is empty: its attribute stands apart, with no text (never "None")
    missing = [e for e in written[faults["attribute_sentence_missing"]]["sentence_regions"]
               if e["row_id"] == last["row_id"] and e["label"] == last["bbox"] and e["phrase"] is None]
    assert [e["attributes"] for e in missing] == [[f"{last['categoryID']}|{last['context']}|{last['label_name']}"]]


def test_silver_every_listed_id_is_written_rejected_or_excluded(built: Built) -> None:
    sample, faults = built.sample, built.sample.faults
    split_dir = sample.root / "silver_dataset" / "splits"
    listed = [(r["dicom_id"], SPLITS[name]) for name in SPLITS for r in _rows(split_dir / name)]
    avoid = {r["dicom_id"] for r in _rows(split_dir / "images_to_avoid.csv")}
    excluded = [i for i, split in listed if split != "test" and i in avoid]
    written, rejected = read_records(built.out, "imagenome-silver"), _reject_rows(built.out, "imagenome-silver")
    assert not set(written) & set(rejected) and not set(excluded) & (set(written) | set(rejected))
    assert sorted([*written, *rejected, *excluded]) == sorted(i for i, _ in listed)
    unreadable = {faults[k]: "scene_graph_unreadable" for k in
                  ("scene_graph_directory", "scene_graph_unreadable", "scene_graph_corrupt_member") if k in faults}
    kept = {i for i, split in listed if i not in excluded}
    assert {i: r["reason"] for i, r in rejected.items()} == {
        sample.missing_scene_graph: "scene_graph_missing", sample.truncated_scene_graph: "scene_graph_invalid",
        faults["silver_bad_id"]: "unsafe_id", **unreadable,
        **{i: r for i, r in _image_rejects(built, kept).items() if i not in unreadable}}
    silver = built.manifest["configs"]["imagenome-silver"]
    assert silver["excluded"] == {"gold_image_in_images_to_avoid": len(excluded)}
    assert silver["counts"]["notes"]["phrase_missing"] == 1
    assert sum(c["read"] for c in silver["counts"]["splits"].values()) == len(kept)
    details = [rejected[i]["detail"] for i in unreadable]
    if "scene_graph_corrupt_member" in faults:
        member = f"scene_graph/{faults['scene_graph_corrupt_member']}_SceneGraph.json"
        # the flipped bytes fail either inflate or the CRC check, depending on where they land
        assert len(details) == 1 and details[0].startswith(f"{member} in scene_graph.zip: ")
        assert "Bad CRC-32" in details[0] or "decompressing data" in details[0]
    else:
        assert details == [f"{faults['scene_graph_directory']}_SceneGraph.json: Is a directory",
                           f"{faults['scene_graph_unreadable']}_SceneGraph.json: Too many levels of symbolic links"]


def test_a_null_phrase_is_never_the_text_none(built: Built) -> None:
    rows = read_records(built.out, "imagenome-silver")
    phrases = [r["phrase"] for row in rows.values() for r in row["regions"]]
    assert phrases and "None" not in phrases and None not in phrases
    row = rows[built.sample.faults["phrase_missing"]]
    graph_phrases = sum(1 for a in _graph(built.sample, row["id"])["attributes"] for p in a["phrases"] if p)
    assert len({(r["label"], r["phrase"]) for r in row["regions"]}) <= graph_phrases


def _graph(sample: ImagenomeSample, dicom_id: str) -> dict:
    folder = sample.root / "silver_dataset" / "scene_graph" / f"{dicom_id}_SceneGraph.json"
    if folder.is_file():
        return json.loads(folder.read_text())
    import zipfile

    with zipfile.ZipFile(sample.root / "silver_dataset" / "scene_graph.zip") as zf:
        return json.loads(zf.read(f"scene_graph/{dicom_id}_SceneGraph.json"))


def _mimic_without_sizes(mimic: MimicSample, root: Path) -> Path:
    """A MIMIC-CXR-JPG root whose metadata has no Rows/Columns (the images are the sample's)."""
    root.mkdir()
    (root / "files").symlink_to(mimic.root / "files")
    with gzip.open(mimic.root / METADATA[0], "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    keep = [c for c in METADATA_HEADER if c not in ("Rows", "Columns")]
    with gzip.open(root / METADATA[0], "wt", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(keep)
        writer.writerows([[r[c] for c in keep] for r in rows])
    return root


def test_metadata_without_rows_uses_the_image_size_and_counts_it(hostile: ImagenomeSample, mimic_sample: MimicSample,
                                                                 tmp_path: Path) -> None:
    mimic_root = _mimic_without_sizes(mimic_sample, tmp_path / "mimic")
    manifest = _build(hostile, mimic_root, tmp_path / "out")
    for config in ("imagenome-gold", "imagenome-silver"):
        counts = manifest["configs"][config]["counts"]
        written = sum(c["written"] for c in counts["splits"].values())
        read = sum(c["read"] for c in counts["splits"].values())
        # notes count over every record read: the written ones and those rejected after their image was sized
        assert 0 < written <= counts["notes"]["original_size_from_image_file"] <= read
        for row in read_records(tmp_path / "out", config).values():
            assert (row["original_width"], row["original_height"]) == hostile.image_sizes[row["id"]]


def _copy_tree(sample: ImagenomeSample, base: Path) -> Path:
    shutil.copytree(sample.root, base / "chest-imagenome-dataset-1.0.0", symlinks=True)
    return base / "chest-imagenome-dataset-1.0.0"


EMPTY_FILES = (GOLD_BOXES, GOLD_ATTRIBUTES, "silver_dataset/splits/train.csv", "silver_dataset/splits/valid.csv",
               "silver_dataset/splits/test.csv", "silver_dataset/splits/images_to_avoid.csv")


@pytest.mark.parametrize("rel", EMPTY_FILES)
def test_zero_byte_input_is_one_error_line(hostile: ImagenomeSample, mimic_sample: MimicSample, tmp_path: Path,
                                           rel: str) -> None:
    root = _copy_tree(hostile, tmp_path)
    (root / rel).write_bytes(b"")
    result = CliRunner().invoke(main, ["build", "imagenome", "--root", str(root), "--mimic-root",
                                       str(mimic_sample.root), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [f"error: {root / rel} is empty (0 bytes): download it again"]


@pytest.mark.parametrize(("content", "message"), [(b"", "is empty (0 bytes): download it again"),
                                                  (gzip.compress(b"", mtime=0), "has no header line (an empty table): "
                                                                       "download it again")])
def test_empty_metadata_is_one_error_line(hostile: ImagenomeSample, mimic_sample: MimicSample, tmp_path: Path,
                                          content: bytes, message: str) -> None:
    mimic_root = tmp_path / "mimic"
    mimic_root.mkdir()
    (mimic_root / "files").symlink_to(mimic_sample.root / "files")
    (mimic_root / METADATA[0]).write_bytes(content)
    result = CliRunner().invoke(main, ["build", "imagenome", "--root", str(hostile.root), "--mimic-root",
                                       str(mimic_root), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [f"error: {mimic_root / METADATA[0]} {message}"]


def test_counts_add_up_per_split(built: Built) -> None:
    for config in ("imagenome-gold", "imagenome-silver"):
        counts = built.manifest["configs"][config]["counts"]
        for split in counts["splits"].values():
            assert split["read"] == split["written"] + split["rejected"]
        assert sum(counts["rejects_by_reason"].values()) == sum(s["rejected"] for s in counts["splits"].values())
        assert Counter(r["reason"] for r in _reject_rows(built.out, config).values()) == Counter(
            counts["rejects_by_reason"])


def test_gold_lut_reader_counts_repeats_and_conflicts(hostile: ImagenomeSample) -> None:
    """The LUT must not weigh a repeated box twice nor average a box given twice differently."""
    from cxrdata.sources.imagenome_gold import read_gold_boxes

    gold = read_gold_boxes(hostile.root)
    assert gold.problems == {"duplicate_row": 1, "conflicting_rows": 2, "no_scaling_row": 1}  # ../evil has none
    pairs = [(b.dicom_id, b.bbox_name) for b in gold.boxes]
    assert len(pairs) == len(set(pairs)) == gold.rows - 4
    assert (hostile.faults["gold_box_conflict"], "trachea") not in pairs


def test_doctor_names_a_broken_attributes_file(hostile: ImagenomeSample, mimic_sample: MimicSample,
                                               tmp_path: Path) -> None:
    from cxrdata.sources.doctor import diagnose_imagenome

    root = _copy_tree(hostile, tmp_path)
    (root / GOLD_ATTRIBUTES).write_bytes(b"")
    [finding] = [f for f in diagnose_imagenome(root, None, decode=0) if f.item == GOLD_ATTRIBUTES]
    assert finding.level == "error"
    assert finding.detail == f"{root / GOLD_ATTRIBUTES} is empty (0 bytes): download it again"
    assert finding.fix.startswith(f"restore {GOLD_ATTRIBUTES} from chest-imagenome-dataset-1.0.0.zip; its columns")
