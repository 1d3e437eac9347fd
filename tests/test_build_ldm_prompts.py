"""`build mimic --recipe ldm-prompts`: single-pathology studies -> one row per (image, prompt), every image
accounted for, the extractor recorded, Gaussians from a LUT, the extraction cache reused, RadGraph plumbing."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import datasets
import polars as pl
import pytest
from click.testing import CliRunner
from cxrdata_testing import expected_rejects, read_records, read_rejects

from cxrdata.anatomy.lut import build_lut, read_lut, write_lut
from cxrdata.cli import main
from cxrdata.extract.cache import ExtractionCache
from cxrdata.extract.rules import RuleExtractor
from cxrdata.sample.chest import anatomy_boxes
from cxrdata.stage import Reject
from cxrdata.targets.locate_stage import ReportLocateStage
from cxrdata.vocabulary import locations

CONFIG = "ldm-prompts"
# The CheXpert columns of the 8 pathologies, spelled as in MIMIC's CSV.
EIGHT = ("Pneumonia", "Pneumothorax", "Pleural Effusion", "Lung Opacity", "Atelectasis", "Cardiomegaly",
         "Consolidation", "Edema")
LOCATE_REASONS = {"no_sentence", "negated", "uncertain", "no_location"}
# Sentences of the sample's reports and the prompt their study must get (rules extractor).
EXACT = {
    "Multifocal left upper lobe pneumonia is present.": "left upper pneumonia",
    "A small pneumothorax is seen on the right.": "right pneumothorax",
    "Trace pleural effusion at the left costophrenic angle is new.": "left costophrenic pleural effusion",
    "Bibasilar plate-like atelectasis is present.": "bibasilar atelectasis",
    "New left lower lobe opacity.": "left lower lung opacity",
    "Enlarged heart is again noted.": "cardiomegaly cardiomegaly",
    "Severe bilateral perihilar edema is present.": "pulmonary edema",
    "New dense lingular consolidation.": "lingular consolidation",
}


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def build_ldm(sample, out: Path, *extra: str):
    result = invoke("build", "mimic", "--root", str(sample.root), "--recipe", "ldm-prompts", "--out", str(out),
                    "--workers", "1", "--quiet", *extra)
    assert result.exit_code == 0, result.output
    return json.loads((out / "manifest.json").read_text())["configs"][CONFIG]


def single_pathology_images(sample) -> dict[str, str]:
    """dicom_id -> the one positive pathology of its study, for frontal images (from the CSVs alone)."""
    labels = pl.read_csv(sample.root / "mimic-cxr-2.0.0-chexpert.csv.gz", infer_schema=False)
    single = {}
    for row in labels.iter_rows(named=True):
        positive = [p for p in EIGHT if row[p] not in (None, "") and float(row[p]) == 1.0]
        if len(positive) == 1:
            single[(row["subject_id"], row["study_id"])] = positive[0]
    meta = pl.read_csv(sample.root / "mimic-cxr-2.0.0-metadata.csv.gz", infer_schema=False)
    return {r["dicom_id"]: single[(r["subject_id"], r["study_id"])] for r in meta.iter_rows(named=True)
            if r["ViewPosition"] in ("PA", "AP") and (r["subject_id"], r["study_id"]) in single}


def report_text(sample, row: dict) -> str:
    sid = str(row["subject_id"])
    path = sample.root / "files" / f"p{sid[:2]}" / f"p{sid}" / f"s{row['study_id']}.txt"
    return " ".join(path.read_text().split())


def excluded(manifest_config: dict) -> dict[str, int]:
    return manifest_config.get("excluded", manifest_config.get("excluded_by_options"))


@pytest.fixture(scope="module")
def ldm(mimic_sample, tmp_path_factory):
    """The recipe under ``auto`` with an empty RadGraph cache (so: the rules), no LUT."""
    root = tmp_path_factory.mktemp("ldm")
    manifest = build_ldm(mimic_sample, root / "out", "--radgraph-cache", str(root / "no-radgraph"))
    return root / "out", manifest


def test_every_single_pathology_image_is_written_or_rejected(mimic_sample, ldm):
    out, manifest = ldm
    expected = single_pathology_images(mimic_sample)
    frontal_rejects = expected_rejects(mimic_sample)
    rejects = {d: r for d, r in frontal_rejects.items() if d in expected}  # defects of other studies: excluded
    written, rejected = read_records(out, CONFIG), read_rejects(out, CONFIG)

    assert len(expected) == 23 and len(set(expected.values())) == 8  # the sample covers all 8 pathologies
    assert rejected == rejects and rejects == {mimic_sample.corrupt_jpeg: "image_corrupt"}
    assert set(written) == set(expected) - set(rejects)  # every report of the sample gives a location
    counts = manifest["counts"]
    assert counts["total"] == {"read": len(expected), "written": len(written), "rejected": len(rejected)}
    assert counts["rejects_by_reason"] == dict(Counter(rejects.values()))
    for split in counts["splits"].values():
        assert split["read"] == split["written"] + split["rejected"]
    assert excluded(manifest) == {
        "view_not_selected": mimic_sample.images - mimic_sample.frontal_images,
        "not_single_pathology": mimic_sample.frontal_images - len(expected),
    }
    assert len({(r["subject_id"], r["study_id"]) for r in written.values()}) <= mimic_sample.single_pathology_studies
    assert manifest["options"]["extractor"] == "rules@2" and manifest["options"]["lut"] is None
    assert "locate@3:rules@2:lut=none:findings+impression/last_paragraph:uncertain=0" in manifest["stages"]


def test_rows_carry_the_study_pathology_and_its_located_sentences(mimic_sample, ldm):
    out, _ = ldm
    expected = single_pathology_images(mimic_sample)
    terms = set(locations())
    for dicom_id, row in read_records(out, CONFIG).items():
        assert row["id"] == row["dicom_id"] == dicom_id
        assert row["pathology"] == expected[dicom_id]
        assert row["extractor"] == "rules@2"
        assert row["gaussians"] is None and row["lut_grid"] is None
        assert row["locations"] and set(row["locations"]) <= terms
        assert row["prompt"] == " <and> ".join(row["locations"]) + " " + row["pathology"].lower()
        report = report_text(mimic_sample, row)
        assert row["sentences"] and all(sentence in report for sentence in row["sentences"])
        assert row["view_position"] in ("PA", "AP") and row["image"]["bytes"]


def test_exact_prompts(mimic_sample, ldm):
    out, _ = ldm
    rows = read_records(out, CONFIG).values()
    for sentence, prompt in EXACT.items():
        matching = [r for r in rows if sentence in r["sentences"]]
        assert matching, sentence
        assert {r["prompt"] for r in matching} == {prompt}, sentence
        assert all(sentence in report_text(mimic_sample, r) for r in matching)


def test_loads_with_datasets(ldm):
    out, _ = ldm
    ds = datasets.load_dataset(str(out))
    assert sum(len(split) for split in ds.values()) == len(read_records(out, CONFIG))
    features = ds["train"].features
    assert isinstance(features["image"], datasets.Image)
    row = ds["train"][0]
    pathology = features["pathology"].int2str(row["pathology"])  # a ClassLabel of the 8 pathologies
    assert row["extractor"] == "rules@2" and row["prompt"].endswith(pathology.lower())


def test_gaussians_from_the_lut(mimic_sample, tmp_path):
    boxes = [item for w, h in ((512, 512), (400, 500), (600, 480)) for item in anatomy_boxes(w, h).items()]
    write_lut(build_lut(boxes), tmp_path / "lut.json")
    lut = read_lut(tmp_path / "lut.json")
    manifest = build_ldm(mimic_sample, tmp_path / "out", "--extractor", "rules", "--lut", str(tmp_path / "lut.json"))
    rows = read_records(tmp_path / "out", CONFIG).values()
    assert rows and any(len(r["locations"]) and len(r["gaussians"][0]) == 2 for r in rows)  # a bilateral mixture
    for row in rows:
        assert row["lut_grid"] == lut.grid == 512
        assert row["gaussians"] == [lut.params(term).tolist() for term in row["locations"]]
    assert any(":lut=" in s and ":lut=none" not in s for s in manifest["stages"])


def test_a_second_build_reuses_the_extraction_cache(mimic_sample, ldm, tmp_path, monkeypatch):
    out, _ = ldm
    cache = out / "cache" / "extract.sqlite"
    assert ExtractionCache(cache).count("rules", "2") > 0
    calls: list[int] = []
    original = RuleExtractor.extract
    monkeypatch.setattr(RuleExtractor, "extract", lambda self, s: calls.append(len(s)) or original(self, s))
    build_ldm(mimic_sample, tmp_path / "again", "--extractor", "rules", "--extraction-cache", str(cache))
    assert calls == []  # every sentence came from the first build's cache
    assert read_records(tmp_path / "again", CONFIG) == read_records(out, CONFIG)
    assert not (tmp_path / "again" / "cache").exists()


# -- the stage on hand-written reports ------------------------------------------------------------------


def report(id_: str, pathology: str, findings: str | None, impression: str | None = None) -> dict:
    return {"id": id_, "split": "train", "chexpert": {pathology: 1.0, "Support Devices": 1.0},
            "findings": findings, "impression": impression, "last_paragraph": None, "report": "x"}


class CountingExtractor(RuleExtractor):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def extract(self, sentences):
        self.calls.append(list(sentences))
        return super().extract(sentences)


def test_stage_reasons_and_one_extractor_call_per_batch():
    extractor = CountingExtractor()
    stage = ReportLocateStage(extractor=extractor, columns=("id", "split", "pathology", "prompt"))
    stage.setup()
    batch = [
        report("ok", "Atelectasis", "Left lower lobe atelectasis.", "Left lower lobe atelectasis."),
        report("none", "Pneumonia", "The lungs are clear."),
        report("neg", "Pneumothorax", "No pneumothorax."),
        report("unc", "Pneumonia", "Right lower lobe opacity may represent pneumonia."),
        report("noloc", "Edema", "Edema is present."),
        report("both", "Pleural Effusion", "Small left pleural effusion.", "Small right pleural effusion."),
        {**report("two", "Edema", "Edema."), "chexpert": {"Edema": 1.0, "Pneumonia": 1.0}},
    ]
    out = stage.run(batch)
    assert len(extractor.calls) == 1  # one call for the whole batch, each distinct sentence once
    assert sorted(extractor.calls[0]) == sorted({"Left lower lobe atelectasis.", "Edema is present.",
                                                 "Small left pleural effusion.", "Small right pleural effusion."})
    results = {item.record_id if isinstance(item, Reject) else item["id"]: item for item in out}
    assert [item.record_id if isinstance(item, Reject) else item["id"] for item in out] == [r["id"] for r in batch]
    assert results["ok"] == {"id": "ok", "split": "train", "pathology": "Atelectasis",
                             "prompt": "left lower atelectasis"}
    assert results["both"]["prompt"] == "bilateral pleural effusion"  # report-level merge of left and right
    reasons = {k: (v.stage, v.reason) for k, v in results.items() if isinstance(v, Reject)}
    assert reasons == {"none": ("locate", "no_sentence"), "neg": ("locate", "negated"),
                       "unc": ("locate", "uncertain"), "noloc": ("locate", "no_location"),
                       "two": ("locate", "not_single_pathology")}
    assert "Edema is present." in results["noloc"].detail
    assert stage.run([]) == [] and len(extractor.calls) == 1


# -- RadGraph through the pipeline (a tiny random model: output meaningless, accounting exact) ------------


@pytest.fixture(scope="module")
def tiny_radgraph(tmp_path_factory) -> Path:
    pytest.importorskip("radgraph")
    pytest.importorskip("transformers")
    from radgraph_tiny import build_random_radgraph

    cache = tmp_path_factory.mktemp("tiny-radgraph")
    build_random_radgraph(cache)
    return cache


def test_radgraph_runs_end_to_end_and_everything_is_accounted(mimic_sample, tiny_radgraph, tmp_path):
    out = tmp_path / "out"
    manifest = build_ldm(mimic_sample, out, "--extractor", "radgraph", "--radgraph-cache", str(tiny_radgraph),
                         "--device", "cpu", "--max-reject-share", "1")  # random weights: most find no location
    expected = single_pathology_images(mimic_sample)
    written, rejected = read_records(out, CONFIG), read_rejects(out, CONFIG)
    assert set(written) | set(rejected) == set(expected) and not set(written) & set(rejected)
    assert set(rejected.values()) <= LOCATE_REASONS | {"image_corrupt"}
    counts = manifest["counts"]
    assert counts["total"] == {"read": len(expected), "written": len(written), "rejected": len(rejected)}
    labels = {r["extractor"] for r in written.values()}
    assert len(labels) <= 1 and all(label.startswith("radgraph-xl@radgraph-0.1.18+") for label in labels)
    assert any(s.startswith("locate@3:radgraph-xl@") for s in manifest["stages"])
    cache = ExtractionCache(out / "cache" / "extract.sqlite")
    assert cache.count("radgraph-xl") > 0 and cache.count("rules") == 0

    # The extractor is part of the config hash: the same OUT with the rules is refused, not mixed.
    result = invoke("build", "mimic", "--root", str(mimic_sample.root), "--recipe", "ldm-prompts", "--out", str(out),
                    "--workers", "1", "--quiet", "--extractor", "rules")
    assert result.exit_code == 2 and "different configuration" in result.output and "stages" in result.output
