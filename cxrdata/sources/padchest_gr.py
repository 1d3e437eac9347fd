"""PadChest-GR: 16-bit PNGs with grounded report sentences from up to two readers (FORMATS.md section 5).

One record per study (= one image). Quirks handled here: Study/Patient ids are 38-39 digit strings
(read as text, never numbers); negative sentences have no ``boxes``/``labels`` keys (``.get``) and
are kept as negatives; positive sentences may have no boxes; ``boxes`` = reader 1, ``extra_boxes`` =
reader 2; boxes are already normalised xyxy; the split and PatientID come from ``master_table.csv``
(split ``validation``; tasks are cut by patient, so the patient-disjoint splits stay so). A file
that is not valid JSON or a table without its columns stops the build up front; an entry without
ids, or a study missing from the master table, is a reject.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cxrdata.errors import CxrdataError, Rejected
from cxrdata.pipeline.image_stage import Png16ImageStage
from cxrdata.pipeline.stage import Record, RecordStage, Stage
from cxrdata.sources.base import InputFile, canonical_split
from cxrdata.sources.csvfiles import read_text_csv, require_columns
from cxrdata.sources.regions import Regions

REPORTS_GLOB = "grounded_reports_*.json"
MASTER_TABLE = "master_table.csv"
MASTER_COLUMNS = ("StudyID", "ImageID", "split", "PatientID")
IMAGE_DIRS = ("PadChest_GR", "Padchest_GR_files/PadChest_GR", "images_grounding")
READERS = (("boxes", "reader1"), ("extra_boxes", "reader2"))
SOURCE = "padchest-gr"


def _strings(values: Any) -> list[str]:
    return [str(v) for v in values] if isinstance(values, list) else []


def _attributes(labels: list[str], locations: list[str], progression: str | None) -> list[str]:
    """The sentence's labels, locations and progression as ``category|yes|value`` strings."""
    found = [f"label|yes|{x}" for x in labels] + [f"location|yes|{x}" for x in locations]
    return found + ([f"progression|yes|{progression}"] if progression else [])


@dataclass
class PadchestSentenceStage(RecordStage):
    """Sentences (en + es, labels, locations, progression) and both readers' boxes as regions."""

    name: ClassVar[str] = "padchest-gr-sentences"
    version: ClassVar[str] = "1"

    def process(self, record: Record) -> Record:
        raw = record.pop("_raw")
        if not record["study_id"] or not record["image_id"]:
            raise Rejected("id_missing", "entry has no StudyID or ImageID")
        if Path(record["image_id"]).name != record["image_id"]:
            raise Rejected("bad_id", f"ImageID {record['image_id']!r} is not a file name")
        if record["split"] is None:
            raise Rejected("split_missing", f"StudyID {record['study_id']} is not in {MASTER_TABLE}")
        findings = raw.get("findings")
        if not isinstance(findings, list) or not all(isinstance(f, dict) for f in findings):
            raise Rejected("findings_invalid", "'findings' is not a list of objects")
        sentences, regions = [], Regions(record, SOURCE)
        for index, finding in enumerate(findings):
            labels, locations = _strings(finding.get("labels")), _strings(finding.get("locations"))
            progression = finding.get("progression")
            progression = None if progression in (None, "") else str(progression)
            sentence = {
                "sentence_en": str(finding.get("sentence_en") or ""),
                "sentence_es": str(finding.get("sentence_es") or ""),
                "abnormal": bool(finding.get("abnormal")), "labels": labels, "locations": locations,
                "progression": progression,
            }
            sentences.append(sentence)
            label = "; ".join(labels)
            for key, reader in READERS:
                for raw_box in finding.get(key) or []:
                    box = regions.box(lambda raw_box=raw_box: raw_box, label, reader)
                    if box is not None:
                        regions.add(box, sentence["sentence_en"], label, reader, index,
                                    _attributes(labels, locations, progression))
        record.update(sentences=sentences, regions=regions.kept, rejected_regions=regions.rejected,
                      previous_study_id=_id(raw.get("PreviousStudyID")),
                      previous_image_id=_id(raw.get("PreviousImageID")))
        return record


def _id(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


@dataclass
class PadchestGrSource:
    """PadChest-GR studies with grounded sentences; split and patient from the master table."""

    root: Path
    image_size: int = 512
    image_format: str = "jpeg"
    dataset: ClassVar[str] = "padchest-gr"
    config: str = "padchest-gr"
    schema: ClassVar[str] = "padchest-gr"
    splits: ClassVar[tuple[str, ...]] = ("train", "validation", "test")
    excluded: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    @property
    def reports(self) -> Path:
        found = sorted(self.root.glob(REPORTS_GLOB))
        if not found:
            raise CxrdataError(f"no PadChest-GR reports ({REPORTS_GLOB}) in {self.root}")
        return found[-1]

    @property
    def image_dir(self) -> Path:
        return next((self.root / d for d in IMAGE_DIRS if (self.root / d).is_dir()), self.root / IMAGE_DIRS[0])

    def check(self) -> None:
        if not self.root.is_dir():
            raise CxrdataError(f"PadChest-GR root {self.root} does not exist or is not a folder")
        self._entries()
        if not (self.root / MASTER_TABLE).is_file():
            raise CxrdataError(f"PadChest-GR {MASTER_TABLE} not found in {self.root} (unzip master_table.csv.zip)")
        require_columns(self.root / MASTER_TABLE, MASTER_COLUMNS)
        if not self.image_dir.is_dir():
            raise CxrdataError(f"PadChest-GR image folder not found (tried {', '.join(IMAGE_DIRS)}) in {self.root}")

    def _entries(self) -> list[dict[str, Any]]:
        try:
            entries = json.loads(self.reports.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise CxrdataError(f"{self.reports.name} cannot be read: {exc}") from None
        except ValueError as exc:
            raise CxrdataError(f"{self.reports.name} is not valid JSON (truncated download?): {exc}") from None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise CxrdataError(f"{self.reports.name}: expected a JSON list of study objects")
        return entries

    def inputs(self) -> list[InputFile]:
        return [InputFile.of(self.reports, self.root), InputFile.of(self.root / MASTER_TABLE, self.root)]

    def describe(self) -> dict[str, Any]:
        return {"image_size": self.image_size, "image_format": self.image_format, "reports": self.reports.name}

    def records_per_task(self) -> int:
        return {"path": 50_000}.get(self.image_format, 2_000)

    def records(self) -> list[Record]:
        table = read_text_csv(self.root / MASTER_TABLE).unique("StudyID", keep="first", maintain_order=True)
        study = {r["StudyID"]: r for r in table.select(*MASTER_COLUMNS).iter_rows(named=True)}
        records = []
        for k, entry in enumerate(self._entries()):
            study_id, image_id = _id(entry.get("StudyID")) or "", _id(entry.get("ImageID")) or ""
            meta = study.get(study_id, {})
            records.append({
                "id": image_id or f"entry-{k}", "study_id": study_id, "image_id": image_id,
                "patient_id": meta.get("PatientID"), "split": canonical_split(meta.get("split")),
                "image_path": f"{self.image_dir.relative_to(self.root).as_posix()}/{image_id}",
                "_image_file": str(self.image_dir / image_id),
                "_partition": meta.get("PatientID") or study_id, "_raw": entry,
            })
        return sorted(records, key=lambda r: r["id"])

    def stages(self) -> list[Stage]:
        return [PadchestSentenceStage(), Png16ImageStage(max_side=self.image_size, image_format=self.image_format)]
