"""PadChest-GR: 16-bit PNGs with grounded report sentences from up to two readers (FORMATS.md section 5,
docs/formats/padchest-gr.md).

One record per study (= one image), id = its ImageID. Records are matched with ``master_table.csv``
(split, PatientID) by their ``StudyID``; a file whose records carry no ids at all (a real copy has none)
is paired with the master table's studies by order and every pair verified
(:mod:`cxrdata.sources.padchest_gr_master`); the manifest's ``pairing`` says which (``ids`` or
``order``). Ids are strings, never numbers (38-39 digits usually, but ``…-2`` suffixes and other
lengths occur). Negative sentences have no ``boxes``/``labels`` keys and are kept as negatives;
positive sentences may have no boxes; ``boxes`` = reader 1, ``extra_boxes`` = reader 2, already
normalised xyxy. Values of the wrong type reject the record (:mod:`cxrdata.sources.padchest_gr_entries`).
A record repeated verbatim is kept once (note ``duplicate_entry``); two different records of one ImageID
are both rejected (``conflicting_entries``; the later one's id is ``<ImageID>#entry-<k>``). A file that
is not valid JSON, an empty one or a table without its columns stops the build up front.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cxrdata.errors import CxrdataError, Rejected
from cxrdata.imaging.stages import ImageStage, Png16ImageStage
from cxrdata.io.csvfiles import check_readable, require_columns
from cxrdata.recipe import option
from cxrdata.sources.base import DatasetEntry, InputFile, canonical_split
from cxrdata.sources.input_checks import check_file_id
from cxrdata.sources.padchest_gr_entries import entry_problem
from cxrdata.sources.padchest_gr_master import Study, pair_by_order, read_studies
from cxrdata.sources.regions import Regions
from cxrdata.sources.versions import padchest_version
from cxrdata.stage import Record, RecordStage, Stage

REPORTS_GLOB = "grounded_reports_*.json"
MASTER_TABLE = "master_table.csv"
MASTER_COLUMNS = ("StudyID", "ImageID", "split", "PatientID", "sentence_en", "boxes_count", "extra_boxes_count")
IMAGE_DIRS = ("PadChest_GR", "Padchest_GR_files/PadChest_GR", "images_grounding")
PRIOR_DIR = "PadChest_GR_progression_prior_studies"
READERS = (("boxes", "reader1"), ("extra_boxes", "reader2"))
SOURCE = "padchest-gr"


def prior_dir(root: Path) -> Path:
    """The prior studies' folder: some downloads nest it twice (``…_prior_studies/…_prior_studies/``)."""
    outer = root / PRIOR_DIR
    return outer / PRIOR_DIR if (outer / PRIOR_DIR).is_dir() else outer


def _attributes(labels: list[str], locations: list[str], progression: str | None) -> list[str]:
    """The sentence's labels, locations and progression as ``category|yes|value`` strings."""
    found = [f"label|yes|{x}" for x in labels] + [f"location|yes|{x}" for x in locations]
    return found + ([f"progression|yes|{progression}"] if progression else [])


@dataclass
class PadchestSentenceStage(RecordStage):
    """Ids, master-table match, then sentences (en + es, labels, locations, progression) and both readers'
    boxes as regions."""

    name: ClassVar[str] = "padchest-gr-sentences"
    version: ClassVar[str] = "2"
    needs: ClassVar[frozenset[str]] = frozenset({"_raw", "_problem", "_study", "_duplicates", "study_id", "image_id"})
    drops: ClassVar[frozenset[str]] = frozenset({"_raw", "_problem", "_study", "_duplicates"})
    gives: ClassVar[frozenset[str]] = frozenset({"sentences", "regions", "rejected_regions", "previous_study_id",
                                                 "previous_image_id"})

    def process(self, record: Record) -> Record:
        raw = record.pop("_raw")
        if problem := record.pop("_problem", None):
            raise Rejected(*problem)
        if not record["study_id"] or not record["image_id"]:
            raise Rejected("id_missing", "entry has no StudyID or ImageID")
        check_file_id(record["study_id"], "StudyID")
        check_file_id(record["image_id"], "ImageID")
        if raw.get("PreviousImageID"):
            check_file_id(raw["PreviousImageID"], "PreviousImageID")
        study: Study | None = record.pop("_study")
        if study is None or record["split"] is None:
            raise Rejected("split_missing", f"StudyID {record['study_id']} is not in {MASTER_TABLE} (or has no split)")
        if study.conflict:
            raise Rejected("conflicting_rows", study.conflict)
        if study.image_id != record["image_id"]:
            raise Rejected("image_id_mismatch", f"{MASTER_TABLE} gives study {study.study_id} the ImageID "
                                                f"{study.image_id}, the record {record['image_id']}")
        sentences, regions = [], Regions(record, SOURCE)
        for index, finding in enumerate(raw["findings"]):
            labels, locations = finding.get("labels") or [], finding.get("locations") or []
            progression = finding.get("progression") or None
            sentence = {"sentence_en": finding["sentence_en"], "sentence_es": finding["sentence_es"],
                        "abnormal": finding["abnormal"], "labels": labels, "locations": locations,
                        "progression": progression}
            sentences.append(sentence)
            label = "; ".join(labels)
            for key, reader in READERS:
                for raw_box in finding.get(key) or []:
                    box = regions.box(lambda raw_box=raw_box: raw_box, label, reader)
                    if box is not None:
                        regions.add(box, sentence["sentence_en"], label, reader, index,
                                    _attributes(labels, locations, progression))
        record.setdefault("_notes", []).extend(["duplicate_entry"] * record.pop("_duplicates", 0))
        record.update(sentences=sentences, regions=regions.kept, rejected_regions=regions.rejected,
                      previous_study_id=raw.get("PreviousStudyID") or None,
                      previous_image_id=raw.get("PreviousImageID") or None)
        return record


@dataclass(frozen=True)
class PadchestGrOptions:
    """``cxrdata build padchest-gr``: the download."""

    root: Path = option(help="PadChest-GR root (grounded_reports_*.json, master_table.csv, PadChest_GR/).")


@dataclass
class PadchestGrSource:
    """PadChest-GR studies with grounded sentences; split and patient from the master table."""

    options: PadchestGrOptions
    dataset: ClassVar[str] = "padchest-gr"
    image: ClassVar[type[ImageStage]] = Png16ImageStage
    config: str = "padchest-gr"
    schema: str = "padchest-gr"
    splits: tuple[str, ...] = ("train", "validation", "test")
    excluded: dict[str, int] = field(default_factory=dict)
    pairing: str | None = field(default=None, init=False)  # "ids" or "order", known once the JSON is read

    @property
    def root(self) -> Path:
        return self.options.root

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
        path = self.reports
        check_readable(path)
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise CxrdataError(f"{path.name} cannot be read: {exc}") from None
        except ValueError as exc:
            raise CxrdataError(f"{path.name} is not valid JSON (truncated download?): {exc}") from None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise CxrdataError(f"{path.name}: expected a JSON list of study objects")
        if not entries:
            raise CxrdataError(f"{path} is an empty list (no studies): download it again")
        self.pairing = "ids" if any("StudyID" in e or "ImageID" in e for e in entries) else "order"
        return entries

    def inputs(self) -> list[InputFile]:
        return [InputFile.of(self.reports, self.root), InputFile.of(self.root / MASTER_TABLE, self.root)]

    def describe(self) -> dict[str, Any]:
        if self.pairing is None:
            self._entries()
        return {"reports": self.reports.name, "pairing": self.pairing}

    def versions(self) -> dict[str, dict[str, str]]:
        found = padchest_version(self.root, self.describe())
        return {self.dataset: found} if found else {}

    def record_keys(self) -> frozenset[str]:
        return frozenset({"study_id", "image_id", "patient_id", "image_path", "_image_file", "_study", "_raw",
                          "_problem", "_duplicates"})

    def filters(self) -> list[Any]:
        return []

    def notices(self) -> list[str]:
        """Lines the build prints after its summary."""
        if self.pairing == "order":
            return [f"padchest-gr: {self.reports.name} has no StudyID/ImageID; its records were paired with "
                    f"{MASTER_TABLE}'s studies by order and each pair verified (manifest: pairing = order)"]
        return []

    def records(self) -> list[Record]:
        entries = self._entries()
        studies = read_studies(self.root / MASTER_TABLE)
        problems = [entry_problem(e) for e in entries]
        if self.pairing == "order":
            records = self._paired_by_order(entries, problems, studies)
        else:
            records = self._paired_by_id(entries, problems, {s.study_id: s for s in studies})
        return sorted(records, key=lambda r: r["id"])

    def _record(self, record_id: str, entry: dict[str, Any], study: Study | None, **fields: Any) -> Record:
        image_id = study.image_id if self.pairing == "order" and study else entry.get("ImageID")
        image_id = image_id or ""
        return {
            "id": record_id, "study_id": study.study_id if self.pairing == "order" and study else
            (entry.get("StudyID") or ""), "image_id": image_id,
            "patient_id": study.patient_id if study else None, "split": canonical_split(study.split if study else None),
            "image_path": f"{self.image_dir.relative_to(self.root).as_posix()}/{image_id}",
            "_image_file": str(self.image_dir / image_id), "_study": study,
            "_partition": (study.patient_id if study else None) or record_id, "_raw": entry,
            "_problem": None, "_duplicates": 0, **fields,
        }

    def _paired_by_id(self, entries: list[dict[str, Any]], problems: list, by_study: dict[str, Study]) -> list[Record]:
        records: dict[str, Record] = {}
        for k, entry in enumerate(entries):
            ids_ok = isinstance(entry.get("ImageID"), str) and entry["ImageID"]
            record_id = entry["ImageID"] if ids_ok else f"entry-{k}"
            study = by_study.get(entry["StudyID"]) if isinstance(entry.get("StudyID"), str) else None
            first = records.get(record_id)
            if first is None:
                records[record_id] = self._record(record_id, entry, study, _problem=problems[k])
            elif first["_raw"] == entry:
                first["_duplicates"] += 1
            else:
                detail = f"entry {k} and an earlier entry are both ImageID {record_id} but differ"
                first["_problem"] = ("conflicting_entries", detail)
                later = f"{record_id}#entry-{k}"
                records[later] = self._record(later, entry, study, _problem=("conflicting_entries", detail))
        return list(records.values())

    def _paired_by_order(self, entries: list[dict[str, Any]], problems: list, studies: list[Study]) -> list[Record]:
        checks = pair_by_order(entries, problems, studies, self.reports.name)
        records = []
        for k, (entry, study) in enumerate(zip(entries, studies, strict=True)):
            if problems[k] or checks[k]:
                problem = problems[k] or ("pairing_mismatch", f"record {k}, paired by order with {checks[k]}")
                records.append(self._record(f"entry-{k}", entry, None, _problem=problem))
            else:
                records.append(self._record(study.image_id or f"entry-{k}", entry, study))
        return records

    def stages(self, image: ImageStage) -> list[Stage]:
        return [PadchestSentenceStage(), image]


ENTRY = DatasetEntry(
    name="padchest-gr",
    summary="PadChest-GR 16-bit PNGs with grounded sentences (en + es) and both readers' boxes.",
    options=PadchestGrOptions,
    source_classes=(PadchestGrSource,),
    doctor="cxrdata.sources.doctor.padchest_gr:diagnose_padchest_gr",
    doctor_summary="PadChest-GR.",
    sample="cxrdata.sample.padchest_gr:write_padchest_gr_sample",
    sample_options="cxrdata.sample.padchest_gr:SampleOptions",
    sample_summary="PadChest-GR: 16-bit PNGs, grounded_reports JSON and master_table.csv.",
)
