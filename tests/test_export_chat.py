"""`cxrdata export chat` (issue 15, item 1): conversations for TRL / LLaMA-Factory / LLaVA from real builds,
loaded back with `datasets`, with seeded templates, negatives only where absence is known, exact box text."""

from __future__ import annotations

import io
import json
import shutil
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from cxrdata_testing import build_with, read_records
from PIL import Image

from cxrdata.cli import main
from cxrdata.errors import CxrdataError
from cxrdata.export.driver import export_chat
from cxrdata.export.examples import Renderer
from cxrdata.export.findings import Findings, imagenome_findings, vindr_findings, vocabularies
from cxrdata.export.records import RecordFacts, group_regions
from cxrdata.export.templates import PLACEHOLDERS, Template, load_templates, parse_templates, pick, placeholders
from cxrdata.sample.padchest_gr import write_padchest_gr_sample
from cxrdata.sample.vindr import write_vindr_sample
from cxrdata.targets.box_text import bin_size, boxes_to_text, split_object_ref, text_to_boxes

SPOKEN = vocabularies()["vindr"]  # VinDr label -> the words a negative uses


@pytest.fixture(scope="module")
def vindr_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("export-vindr")
    root = write_vindr_sample(base / "vindr", images=40, test_images=12, seed=1).root
    build_with("vindr", base / "out", root=root, image_size=64, max_reject_share=1)
    return base / "out"


@pytest.fixture(scope="module")
def padchest_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("export-padchest")
    sample = write_padchest_gr_sample(base / "padchest-gr", studies=12, seed=0)
    build_with("padchest-gr", base / "out", root=sample.root, image_size=64, max_reject_share=1)
    return base / "out"


def _load(dest: Path) -> datasets.DatasetDict:
    return datasets.load_dataset(str(dest))


def _groups(row: dict) -> dict[str, list]:
    return dict(group_regions(row["regions"], Counter()))


def _within_one_bin(decoded, boxes, fmt, w, h) -> bool:
    bw, bh = bin_size(fmt, w, h)
    return len(decoded) == len(boxes) and all(
        abs(g - v) <= b + 1e-9 for got, want in zip(decoded, sorted(map(tuple, boxes)), strict=True)
        for g, v, b in zip(got, want, (bw, bh, bw, bh), strict=True))


# -- templates -----------------------------------------------------------------------------------------------

def test_every_template_renders_without_a_placeholder_left():
    templates = load_templates()
    values = {"phrase": "left lower lobe opacity", "boxes": "<|box_start|>(1,2),(3,4)<|box_end|>",
              "finding": "pneumothorax", "report": "Findings: clear lungs.", "location": "left lower"}
    seen = set()
    for group, slots in templates.items():
        for slot, items in slots.items():
            assert len(items) >= (2 if slot == "prompt" else 1), f"{group}.{slot} needs several templates"
            for t in items:
                text = t.render(**{k: values[k] for k in placeholders(t.text)})
                assert "{" not in text and "}" not in text and text.strip()
                seen.add(t.id)
    assert len(seen) == sum(len(items) for slots in templates.values() for items in slots.values())
    assert set(templates) == set(PLACEHOLDERS)


def test_every_template_id_is_chosen_by_some_record():
    renderer = Renderer(load_templates(), "qwen2vl", seed=0)
    chosen = set()
    for i in range(200):
        facts = RecordFacts(f"r{i}", "train", groups=[("opacity", [(0.1, 0.2, 0.3, 0.4)])],
                            findings=Findings(["edema"], ["pneumothorax"]), locations=[("edema", ["pulmonary"])],
                            report="Findings: x.")
        for task in ("grounding", "dense-caption", "report", "vqa"):
            for ex in [*renderer.positives(task, facts, (100, 100)),
                       *(renderer.negative(task, facts, "pneumothorax") for _ in [0] if task in ("grounding", "vqa"))]:
                chosen |= {ex.template_id, ex.answer_template_id}
                assert "{" not in ex.prompt + ex.answer
    every = {t.id for slots in load_templates().values() for items in slots.values() for t in items}
    assert chosen == every


def test_template_choice_depends_only_on_seed_and_record():
    items = (Template("a", "x"), Template("b", "y"), Template("c", "z"))
    assert pick(items, 0, "rec", "grounding") == pick(items, 0, "rec", "grounding")
    assert {pick(items, s, "rec", "grounding").id for s in range(30)} == {"a", "b", "c"}


@pytest.mark.parametrize(("doc", "match"), [
    ({"grounding": {}}, "expected the groups"),
    ("bad", "expected the groups"),
])
def test_bad_template_files_are_one_clear_error(doc, match):
    with pytest.raises(CxrdataError, match=match):
        parse_templates(doc, "t.yaml")


def test_a_template_with_an_unknown_or_missing_placeholder_is_refused():
    good = {g: {s: [{"id": f"{g}-{s}", "text": " ".join(f"{{{p}}}" for p in sorted(req)) or "Go."}]
                for s, (_, req) in slots.items()} for g, slots in PLACEHOLDERS.items()}
    assert parse_templates(good, "t.yaml")["grounding"]["prompt"][0].text == "{phrase}"
    bad = json.loads(json.dumps(good))
    bad["grounding"]["prompt"][0]["text"] = "Find {phrse}."
    with pytest.raises(CxrdataError, match=r"grounding-prompt.*allows"):
        parse_templates(bad, "t.yaml")
    bad["grounding"]["prompt"][0]["text"] = "Find it."
    with pytest.raises(CxrdataError, match="needs \\['phrase'\\]"):
        parse_templates(bad, "t.yaml")
    dup = json.loads(json.dumps(good))
    dup["vqa"]["prompt"][0]["id"] = "grounding-prompt"
    with pytest.raises(CxrdataError, match="used twice"):
        parse_templates(dup, "t.yaml")


# -- absence is known only where the dataset says it ----------------------------------------------------------

def test_vindr_absence_needs_a_reader_and_excludes_every_marked_label():
    row = {"regions": [{"label": "Nodule/Mass", "reader": "R1", "box": [0.1, 0.1, 0.2, 0.2]}],
           "rejected_regions": [{"label": "Pneumothorax", "reader": "R2"}],
           "image_labels": [{"reader": "R1", "labels": ["Nodule/Mass"]}, {"reader": "R2", "labels": ["Cardiomegaly"]}],
           "no_finding_readers": []}
    found = vindr_findings(row)
    assert found.present == ["cardiomegaly", "nodule or mass", "pneumothorax"]
    assert len(found.absent) == len(SPOKEN) - 3 and "pleural effusion" in found.absent
    assert not {"nodule or mass", "pneumothorax", "cardiomegaly"} & set(found.absent)
    assert vindr_findings({"regions": [], "rejected_regions": [], "image_labels": [],
                           "no_finding_readers": []}).absent == []  # nobody read it: nothing is known


def test_imagenome_absence_is_an_explicit_negation_never_contradicted():
    row = {"regions": [
        {"attributes": ["anatomicalfinding|no|pneumothorax", "nlp|yes|normal"]},
        {"attributes": ["anatomicalfinding|no|lung opacity"]},
        {"attributes": ["anatomicalfinding|yes|lung opacity", "tubesandlines|no|endotracheal tube"]}]}
    found = imagenome_findings(row)
    assert found.present == ["lung opacity"] and found.absent == ["pneumothorax"]


# -- real exports ---------------------------------------------------------------------------------------------

def test_messages_export_loads_with_datasets_and_holds_the_exact_record(vindr_out: Path, tmp_path: Path):
    result = export_chat(vindr_out, tmp_path / "x", task="grounding", fmt="messages", box_format="qwen2vl", seed=0)
    ds = _load(tmp_path / "x")
    records = read_records(vindr_out, "vindr")
    positives = [r for split in ds.values() for r in split if not r["negative"]]
    assert len(positives) == sum(len(_groups(r)) for r in records.values()) == \
        sum(c.positives for c in result.counts.values())
    templates = {t.id: t.text for t in load_templates()["grounding"]["prompt"]}
    for r in positives:
        row = records[r["record_id"]]
        user, assistant = r["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        assert user["content"][0] == {"type": "image", "text": None}
        assert user["content"][1]["type"] == "text" and len(user["content"]) == 2
        phrase, boxes_text = split_object_ref(assistant["content"][0]["text"])
        assert user["content"][1]["text"] == templates[r["template_id"]].format(phrase=phrase)
        boxes = _groups(row)[phrase]
        w, h = row["original_width"], row["original_height"]
        assert boxes_text == boxes_to_text(boxes, w, h, "qwen2vl")
        assert _within_one_bin(text_to_boxes(boxes_text, w, h, "qwen2vl"), boxes, "qwen2vl", w, h)
        (image,) = r["images"]
        stored = Image.open(io.BytesIO(row["image"]["bytes"]))
        assert image.size == stored.size == (row["image_width"], row["image_height"])
        assert np.array_equal(np.asarray(image), np.asarray(stored))
        assert r["box_format"] == "qwen2vl" and r["source_config"] == "vindr" and r["task"] == "grounding"


def test_negatives_keep_the_share_and_never_name_a_marked_finding(vindr_out: Path, tmp_path: Path):
    records = read_records(vindr_out, "vindr")
    shares = []
    for seed in (0, 1, 2):
        result = export_chat(vindr_out, tmp_path / f"s{seed}", task="grounding", seed=seed, negative_share=0.3)
        ds = _load(tmp_path / f"s{seed}")
        rows = [r for split in ds.values() for r in split]
        negatives = [r for r in rows if r["negative"]]
        shares.append(len(negatives) / len(rows))
        assert result.negatives["kept"] == len(negatives) and result.negatives["achieved_share"] == shares[-1]
        for r in negatives:
            row = records[r["record_id"]]
            marked = {SPOKEN.get(x["label"]) for x in [*row["regions"], *row["rejected_regions"]]}
            marked |= {SPOKEN.get(label) for x in row["image_labels"] for label in x["labels"]}
            answer = r["messages"][1]["content"][0]["text"]
            assert "<|box" not in answer and r["answer_template_id"].startswith("grounding-none")
            finding = next(f for f in SPOKEN.values() if f" {f}" in f" {answer}")
            assert finding not in marked, f"{r['record_id']}: {finding} was marked by a reader"
    assert all(abs(s - 0.3) <= 0.08 for s in shares), shares
    assert len(set(shares)) > 1  # the seed changes which candidates are kept


def test_same_seed_same_bytes_other_seed_other_templates(vindr_out: Path, tmp_path: Path):
    def files(dest: Path) -> dict[str, bytes]:
        return {p.relative_to(dest).as_posix(): p.read_bytes() for p in sorted(dest.rglob("*")) if p.is_file()}

    for fmt in ("messages", "sharegpt", "llava"):
        a = export_chat(vindr_out, tmp_path / f"{fmt}-a", task="vqa", fmt=fmt, seed=7).dest
        b = export_chat(vindr_out, tmp_path / f"{fmt}-b", task="vqa", fmt=fmt, seed=7).dest
        assert files(a) == files(b) and files(a)
    c = export_chat(vindr_out, tmp_path / "c", task="vqa", fmt="sharegpt", seed=8).dest
    ids = lambda d: [json.loads(line)["template_id"] for line in (d / "train.jsonl").read_text().splitlines()]  # noqa: E731
    assert ids(tmp_path / "sharegpt-a") != ids(c)


@pytest.mark.parametrize("fmt", ["sharegpt", "llava"])
def test_json_formats_load_and_reference_the_image_files(vindr_out: Path, tmp_path: Path, fmt: str):
    dest = tmp_path / fmt
    export_chat(vindr_out, dest, task="dense-caption", fmt=fmt, box_format="florence2")
    records = read_records(vindr_out, "vindr")
    info = json.loads((dest / "dataset_info.json").read_text())
    assert set(info) == {"cxrdata_vindr_dense_caption_test", "cxrdata_vindr_dense_caption_train"}
    for entry in info.values():
        assert entry["formatting"] == "sharegpt" and (dest / entry["file_name"]).is_file()
    ds = _load(dest)
    assert set(ds) == {"train", "test"}
    for r in ds["train"]:
        row = records[r["record_id"]]
        if fmt == "sharegpt":
            (user, assistant), (image,) = r["messages"], r["images"]
            assert user["role"] == "user" and user["content"].startswith("<image>") and \
                user["content"].count("<image>") == 1
            prompt, answer = user["content"].removeprefix("<image>"), assistant["content"]
        else:
            human, gpt = r["conversations"]
            assert human["from"] == "human" and gpt["from"] == "gpt" and human["value"].startswith("<image>\n")
            prompt, answer, image = human["value"].removeprefix("<image>\n"), gpt["value"], r["image"]
        assert (dest / image).read_bytes() == row["image"]["bytes"]
        boxes = _groups(row)[answer]
        box_text = boxes_to_text(boxes, row["original_width"], row["original_height"], "florence2")
        assert box_text in prompt


def test_trl_fills_the_image_placeholder(vindr_out: Path, tmp_path: Path):
    prepare = pytest.importorskip("trl.data_utils").prepare_multimodal_messages
    export_chat(vindr_out, tmp_path / "x", task="grounding")
    row = _load(tmp_path / "x")["train"][0]
    filled = prepare(row["messages"], images=row["images"])
    assert filled[0]["content"][0]["image"] is row["images"][0]
    assert [p["type"] for m in filled for p in m["content"]] == ["image", "text", "text"]


def test_report_export_from_padchest_gr(padchest_out: Path, tmp_path: Path):
    result = export_chat(padchest_out, tmp_path / "r", task="report", fmt="messages")
    records = read_records(padchest_out, "padchest-gr")
    ds = _load(tmp_path / "r")
    assert sum(len(s) for s in ds.values()) == len(records) == sum(c.records_exported for c in result.counts.values())
    for r in (r for s in ds.values() for r in s):
        want = " ".join(" ".join(s["sentence_en"].split()) for s in records[r["record_id"]]["sentences"])
        assert r["messages"][1]["content"][0]["text"] == want and r["answer_template_id"] == "report-text"


def test_qwen25vl_boxes_are_pixels_of_the_stored_image_resized(padchest_out: Path, tmp_path: Path):
    export_chat(padchest_out, tmp_path / "q", task="grounding", box_format="qwen25vl")
    records = read_records(padchest_out, "padchest-gr")
    rows = [r for s in _load(tmp_path / "q").values() for r in s if not r["negative"]]
    assert rows
    for r in rows:
        row = records[r["record_id"]]
        phrase = next(p for p in _groups(row) if f'"{p}"' in r["messages"][0]["content"][1]["text"] or
                      p in r["messages"][0]["content"][1]["text"])
        text = r["messages"][1]["content"][0]["text"]
        w, h = row["image_width"], row["image_height"]
        assert _within_one_bin(text_to_boxes(text, w, h, "qwen25vl"), _groups(row)[phrase], "qwen25vl", w, h)


# -- bad input ------------------------------------------------------------------------------------------------

def _copy_with(out: Path, dest: Path, change) -> Path:
    shutil.copytree(out, dest)
    for path in sorted((dest / "data").rglob("*.parquet")):
        table = pq.read_table(path)
        pq.write_table(change(table), path)
    return dest


def test_rows_without_image_or_phrase_are_counted_and_listed(vindr_out: Path, tmp_path: Path):
    def damage(table: pa.Table) -> pa.Table:
        rows = table.to_pylist()
        rows[0]["image"] = None
        with_regions = [r for r in rows[1:] if r["regions"]]
        for region in with_regions[0]["regions"] if with_regions else []:
            region["phrase"] = "  "
        return pa.Table.from_pylist(rows, schema=table.schema)

    out = _copy_with(vindr_out, tmp_path / "out", damage)
    result = export_chat(out, tmp_path / "x", task="grounding", negative_share=0.0)
    manifest = json.loads((tmp_path / "x" / "export.json").read_text())
    for split, c in manifest["counts"].items():
        assert c["records_read"] == c["records_exported"] + c["records_without_examples"]
        assert c["records_read"] == len([r for r in read_records(out, "vindr").values() if r["split"] == split])
    reasons = {w["reason"] for w in manifest["without_examples"]}
    assert "no_image" in reasons and "no_region" in reasons
    assert manifest["notes"]["region_phrase_empty"] == result.notes["region_phrase_empty"] > 0
    assert len(manifest["without_examples"]) == sum(c["records_without_examples"] for c in manifest["counts"].values())


def _cli(*args: str):
    return CliRunner().invoke(main, ["export", "chat", *map(str, args)])


def test_missing_columns_wrong_task_and_busy_folder_are_one_error_line(vindr_out: Path, tmp_path: Path):
    out = _copy_with(vindr_out, tmp_path / "out", lambda t: t.drop(["regions"]))
    run = _cli(out, "--out", tmp_path / "x", "--task", "grounding")
    assert run.exit_code == 2 and run.output.count("error:") == 1 and "lacks column(s) regions" in run.output
    run = _cli(vindr_out, "--out", tmp_path / "y", "--task", "report")
    assert run.exit_code == 2 and "task report needs a report" in run.output
    run = _cli(vindr_out, "--out", tmp_path / "z", "--task", "dense-caption", "--negative-share", "0.2")
    assert run.exit_code == 2 and "applies to grounding and vqa only" in run.output
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    run = _cli(vindr_out, "--out", tmp_path / "busy", "--task", "vqa")
    assert run.exit_code == 2 and "not empty" in run.output and (tmp_path / "busy" / "notes.txt").exists()
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli_writes_then_refuses_then_overwrites(vindr_out: Path, tmp_path: Path):
    run = _cli(vindr_out, "--out", tmp_path / "x", "--task", "vqa", "--format", "llava", "--seed", "3")
    assert run.exit_code == 0, run.output
    assert "conversations to" in run.output and (tmp_path / "x" / "train.json").is_file()
    again = _cli(vindr_out, "--out", tmp_path / "x", "--task", "vqa")
    assert again.exit_code == 2 and "--overwrite" in again.output
    replaced = _cli(vindr_out, "--out", tmp_path / "x", "--task", "vqa", "--overwrite")
    assert replaced.exit_code == 0 and not (tmp_path / "x" / "train.json").exists()
    assert not (tmp_path / "x" / "images").exists() and (tmp_path / "x" / "data").is_dir()


def test_dicom_path_builds_are_refused(tmp_path: Path):
    root = write_vindr_sample(tmp_path / "vindr", images=4, test_images=1, seed=0).root
    build_with("vindr", tmp_path / "out", root=root, image_format="path", max_reject_share=1)
    with pytest.raises(CxrdataError, match="image-format jpeg or png"):
        export_chat(tmp_path / "out", tmp_path / "x", task="grounding")


def test_imagenome_negatives_are_findings_the_report_negates(tmp_path: Path):
    from cxrdata.sample.imagenome import write_imagenome_sample

    write_imagenome_sample(tmp_path / "ig", seed=0)
    build_with("imagenome", tmp_path / "out", root=tmp_path / "ig", mimic_root=tmp_path / "ig" / "mimic-cxr-jpg",
               image_size=64, max_reject_share=1)
    result = export_chat(tmp_path / "out", tmp_path / "x", task="grounding", config="imagenome-silver",
                         negative_share=0.5)
    records = read_records(tmp_path / "out", "imagenome-silver")
    negatives = [r for s in _load(tmp_path / "x").values() for r in s if r["negative"]]
    assert negatives and len(negatives) == result.negatives["kept"]
    for r in negatives:
        said = [a for region in records[r["record_id"]]["regions"] for a in region["attributes"]]
        prompt = r["messages"][0]["content"][1]["text"]
        finding = next(a.split("|")[2] for a in said if "|no|" in a and a.split("|")[2] in prompt)
        assert not any(a.endswith(f"|yes|{finding}") for a in said)
        assert finding in r["messages"][1]["content"][0]["text"]
    assert result.notes["region_without_box"] > 0  # regions without a valid box are counted, not exported
