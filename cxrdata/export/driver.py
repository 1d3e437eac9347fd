"""``cxrdata export chat``: a finished build's config -> single-turn conversations for VLM fine-tuning.

Two passes over the shards. The first reads no image: it counts the positives and the negative candidates
(findings the records say are absent), which fixes the probability a candidate is kept so that negatives
make up ``negative_share`` of the conversations. The second writes. Every record read is either exported
(one conversation or more) or listed in ``export.json`` with the reason it gave none: read = exported +
without examples, per split. Whole-input problems (a config without the columns a task needs, images
stored as DICOM paths, a non-empty destination) are one :class:`CxrdataError` line before anything is
written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from cxrdata import __version__
from cxrdata.errors import CxrdataError
from cxrdata.export.examples import NEGATIVE_TASKS, TASKS, Renderer, box_size, candidates, keep_probability, kept
from cxrdata.export.records import FAMILIES, SIZE_COLUMNS, RecordFacts, family_of, record_facts
from cxrdata.export.templates import default_templates_path, load_templates
from cxrdata.export.writers import FORMATS, ExportWriter, card, dataset_info
from cxrdata.io.layout import BuiltConfig, read_build
from cxrdata.targets.box_text import FORMATS as BOX_FORMATS
from cxrdata.targets.box_text import BoxFormat

MANIFEST = "export.json"
DEFAULT_SHARE = {"grounding": 0.2, "vqa": 0.5}
BATCH_ROWS = 256
_WRITTEN = ("README.md", MANIFEST, "dataset_info.json")


@dataclass
class SplitCounts:
    records_read: int = 0
    records_exported: int = 0
    records_without_examples: int = 0
    positives: int = 0
    negatives: int = 0


@dataclass
class ExportResult:
    dest: Path
    counts: dict[str, SplitCounts]
    without_examples: list[dict[str, str]]
    negatives: dict[str, Any]
    notes: Counter = field(default_factory=Counter)
    files: dict[str, list[str]] = field(default_factory=dict)

    @property
    def conversations(self) -> int:
        return sum(c.positives + c.negatives for c in self.counts.values())


def check_options(task: str, fmt: str, box_format: str, negative_share: float | None) -> float:
    if task not in TASKS:
        raise CxrdataError(f"unknown task {task!r}; choose {', '.join(TASKS)}")
    if fmt not in FORMATS:
        raise CxrdataError(f"unknown format {fmt!r}; choose {', '.join(FORMATS)}")
    if box_format not in BOX_FORMATS:
        raise CxrdataError(f"unknown box format {box_format!r}; choose {', '.join(BOX_FORMATS)}")
    if negative_share is None:
        return DEFAULT_SHARE.get(task, 0.0)
    if not 0.0 <= negative_share < 1.0:
        raise CxrdataError(f"--negative-share must be in [0, 1), not {negative_share}")
    if negative_share and task not in NEGATIVE_TASKS:
        raise CxrdataError(f"--negative-share applies to {' and '.join(NEGATIVE_TASKS)} only, not {task}")
    return negative_share


def check_source(found: BuiltConfig, task: str) -> str:
    """The config's schema family, after checking it serves ``task`` and its shards have every column."""
    family = family_of(found.schema)
    if family not in FAMILIES:
        raise CxrdataError(f"config {found.name!r} has schema {found.schema!r}, which export chat does not read; "
                           f"it reads {', '.join(FAMILIES)} (and their -lofi-regions variants)")
    if task not in FAMILIES[family].tasks:
        able = sorted(n for n, f in FAMILIES.items() if task in f.tasks)
        raise CxrdataError(f"task {task} needs {'a report' if task == 'report' else 'regions or boxes'}; config "
                           f"{found.name!r} ({family}) has none. Configs that have them: {', '.join(able)}")
    needed = [*SIZE_COLUMNS, *FAMILIES[family].columns]
    for path in found.all_files:
        schema = pq.read_schema(path)
        missing = [c for c in needed if c not in schema.names]
        if missing:
            raise CxrdataError(f"{path} lacks column(s) {', '.join(missing)} that task {task} reads from "
                               f"{family} rows: give the OUT of an unmodified cxrdata build")
        if str(schema.field("image").type) == "string":
            raise CxrdataError(f"config {found.name!r} stores images as paths of files no chat trainer opens "
                               "(DICOM or 16-bit PNG, built with --image-format path): rebuild it with "
                               "--image-format jpeg or png")
    return family


def prepare_dest(dest: Path, overwrite: bool) -> None:
    """A new or empty folder, or (with ``overwrite``) a previous export, whose written files are removed."""
    if dest.exists() and not dest.is_dir():
        raise CxrdataError(f"--out {dest} is a file, not a folder")
    if not dest.is_dir() or not any(dest.iterdir()):
        dest.mkdir(parents=True, exist_ok=True)
        return
    if not (dest / MANIFEST).is_file():
        raise CxrdataError(f"--out {dest} is not empty and holds no {MANIFEST}: choose a new or empty folder")
    if not overwrite:
        raise CxrdataError(f"--out {dest} holds an export already: give --overwrite to replace it")
    previous = json.loads((dest / MANIFEST).read_text()).get("files", {})
    for name in [*_WRITTEN, *(p for paths in previous.values() for p in paths)]:
        (dest / name).unlink(missing_ok=True)
    shutil.rmtree(dest / "images", ignore_errors=True)


def _rows(found: BuiltConfig, split: str | None, columns: list[str]) -> Iterator[dict[str, Any]]:
    for path in found.split_files(split):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=columns):
            yield from batch.to_pylist()


def _image_problem(cell: Any) -> tuple[str, str] | None:
    if not isinstance(cell, dict) or (cell.get("bytes") is None and not cell.get("path")):
        return "no_image", "the row has no image"
    if cell.get("bytes") is None and not Path(cell["path"]).is_file():
        return "image_missing", f"{cell['path']} does not exist"
    return None


def _no_example_reason(task: str, facts: RecordFacts, had_candidates: bool) -> tuple[str, str]:
    if had_candidates:
        return "negatives_not_sampled", "only absent findings, none kept at this --negative-share and --seed"
    if task in ("grounding", "dense-caption"):
        return "no_region", f"no region with a box and a phrase ({dict(facts.notes) or 'no regions'})"
    if task == "report":
        return "no_report_text", "no report text"
    return "no_known_finding", "no finding the dataset says is present or absent"


def export_chat(out: Path, dest: Path, *, task: str, fmt: str = "messages", box_format: BoxFormat = "qwen2vl",
                config: str | None = None, split: str | None = None, seed: int = 0,
                negative_share: float | None = None, overwrite: bool = False) -> ExportResult:
    """Export config ``config`` of the build ``out`` as ``task`` conversations in ``fmt`` under ``dest``."""
    share = check_options(task, fmt, box_format, negative_share)
    found = read_build(Path(out), config)
    family = check_source(found, task)
    dest = Path(dest)
    if dest.resolve() == Path(out).resolve() or Path(out).resolve() in dest.resolve().parents:
        raise CxrdataError(f"--out {dest} is inside the build {out}: export somewhere else")
    renderer = Renderer(load_templates(), box_format, seed)
    text_columns = [*(c for c in SIZE_COLUMNS if c != "image"), *FAMILIES[family].columns]

    positives = total_candidates = 0
    for row in _rows(found, split, text_columns):  # pass 1: no image read
        facts = record_facts(family, row)
        positives += len(renderer.positives(task, facts, box_size(box_format, row)))
        total_candidates += len(candidates(task, facts))
    probability = keep_probability(share, positives, total_candidates)

    prepare_dest(dest, overwrite)
    writer = ExportWriter(dest, fmt, found.name, box_format)
    counts: dict[str, SplitCounts] = {}
    without: list[dict[str, str]] = []
    notes: Counter = Counter()
    try:
        for row in _rows(found, split, [*text_columns, "image"]):
            facts = record_facts(family, row)
            c = counts.setdefault(facts.split, SplitCounts())
            c.records_read += 1
            notes.update(facts.notes)
            problem = _image_problem(row["image"])
            pool = candidates(task, facts) if probability > 0 else []
            examples = [] if problem else renderer.positives(task, facts, box_size(box_format, row))
            n_positive = len(examples)
            examples += [] if problem else [renderer.negative(task, facts, f) for f in pool
                                            if kept(seed, facts, f, probability)]
            if not examples:
                reason, detail = problem or _no_example_reason(task, facts, bool(pool))
                without.append({"record_id": facts.record_id, "split": facts.split, "reason": reason,
                                "detail": detail})
                c.records_without_examples += 1
                continue
            c.records_exported += 1
            c.positives += n_positive
            c.negatives += len(examples) - n_positive
            for k, example in enumerate(examples):
                writer.add(f"{facts.record_id}/{task}/{k}", facts.record_id, facts.split, example, row["image"])
    except BaseException:
        writer.abort()
        raise
    files = writer.close()
    kept_total = sum(c.negatives for c in counts.values())
    written = kept_total + sum(c.positives for c in counts.values())
    negatives = {"requested_share": share, "candidates": total_candidates, "keep_probability": probability,
                 "kept": kept_total, "achieved_share": kept_total / written if written else 0.0}
    result = ExportResult(dest, dict(sorted(counts.items())), without, negatives, notes, files)
    _write_outputs(result, found, task, fmt, box_format, seed)
    return result


def _templates_digest() -> str:
    return hashlib.sha256(default_templates_path().read_bytes()).hexdigest()[:16]


def _write_outputs(result: ExportResult, found: BuiltConfig, task: str, fmt: str, box_format: str,
                   seed: int) -> None:
    source_manifest = json.loads((found.out / "manifest.json").read_text()) if found.out and \
        (found.out / "manifest.json").is_file() else {}
    manifest = {
        "tool": "cxrdata", "version": __version__,
        "source": {"out": str(found.out) if found.out else None, "config": found.name, "schema": found.schema,
                   "config_hash": source_manifest.get("config_hash")},
        "options": {"task": task, "format": fmt, "box_format": box_format, "seed": seed},
        "templates_sha256": _templates_digest(),
        "counts": {s: vars(c) for s, c in result.counts.items()},
        "negatives": result.negatives,
        "notes": dict(sorted(result.notes.items())),
        "files": result.files,
        "without_examples": result.without_examples,
    }
    summary = [f"{task} conversations from config `{found.name}` ({found.schema}) in the `{fmt}` format, boxes as "
               f"`{box_format}`, seed {seed}. Counts, negatives and every record without a conversation: "
               f"`{MANIFEST}`. Formats and templates: cxrdata's docs/export.md.", "",
               "| split | records | exported | without conversations | positives | negatives |",
               "| --- | ---: | ---: | ---: | ---: | ---: |",
               *(f"| {s} | {c.records_read} | {c.records_exported} | {c.records_without_examples} | {c.positives} | "
                 f"{c.negatives} |" for s, c in result.counts.items())]
    examples = {s: c.positives + c.negatives for s, c in result.counts.items()}
    _write_text(result.dest / "README.md", card(result.dest, result.files, fmt, summary, examples))
    if fmt != "messages":
        name = f"cxrdata_{found.name}_{task}".replace("-", "_")
        _write_text(result.dest / "dataset_info.json",
                    json.dumps(dataset_info(result.files, fmt, name), indent=2) + "\n")
    _write_text(result.dest / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
