"""MIMIC-CXR-JPG 2.0.0 / 2.1.0 with the MIMIC-CXR reports (FORMATS.md section 1).

Quirks handled here: the 2.1.0 release keeps the ``2.0.0`` CSV names; StudyTime is a float that
lost its leading zero (``80556.875`` is 08:05:56.875); the split is spelled ``validate``; CheXpert
cells are 1 / 0 / -1 / empty (= not mentioned), anything else rejects the image, and a study without
a CheXpert row gets null labels and a note; duplicated rows are handled in :mod:`mimic_tables`;
reports live beside the study folders (``files/pXX/pXXXXXXXX/sXXXXXXXX.txt``), possibly in another
tree (``--reports-root``), and are sectioned by :mod:`cxrdata.text.sections`.
"""

from __future__ import annotations

import codecs
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from cxrdata.errors import CxrdataError, Rejected
from cxrdata.imaging.stages import ImageStage, JpegImageStage
from cxrdata.io.csvfiles import find_file, read_text_csv, require_columns
from cxrdata.io.schema import load_schema
from cxrdata.recipe import option
from cxrdata.records import RecordFrame, Records, keep, mask_by_distinct, raw_frame
from cxrdata.sources.base import DatasetEntry, InputFile, canonical_split
from cxrdata.sources.mimic_tables import CONFLICT, HAS_LABELS, join_tables
from cxrdata.sources.versions import mimic_version
from cxrdata.stage import Record, RecordStage, Stage
from cxrdata.text.sections import report_sections, universal_newlines
from cxrdata.vocabulary import pathologies, positive_pathologies

METADATA = ("mimic-cxr-2.0.0-metadata.csv.gz", "mimic-cxr-2.0.0-metadata.csv")
SPLIT = ("mimic-cxr-2.0.0-split.csv.gz", "mimic-cxr-2.0.0-split.csv")
CHEXPERT = ("mimic-cxr-2.0.0-chexpert.csv.gz", "mimic-cxr-2.0.0-chexpert.csv")
METADATA_COLUMNS = ("dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition",
                    "Rows", "Columns", "StudyDate", "StudyTime", "PatientOrientationCodeSequence_CodeMeaning")
SPLIT_COLUMNS = ("dicom_id", "study_id", "subject_id", "split")
FRONTAL_VIEWS = ("PA", "AP")
DISTINCT_COLUMNS = ("dicom_id", "subject_id", "study_id", "StudyTime")  # every other column has few values
# Every ViewPosition of the metadata (DICOM (0018,5101) as the release spells it), as public MIMIC-CXR
# readers enumerate it (docs/formats/mimic-cxr.md); an empty cell is possible too.
VIEW_POSITIONS = ("PA", "AP", "LATERAL", "LL", "AP AXIAL", "AP LLD", "AP RLD", "PA LLD", "PA RLD", "LAO", "RAO",
                  "LPO", "XTABLE LATERAL", "SWIMMERS", "RPO", "L5 S1")


def parse_views(text: str) -> tuple[str, ...]:
    """``--views``: comma-separated ViewPositions in any case, or ``all`` (an empty tuple: every view).

    An unknown name (a typo such as ``LATRAL``) is refused in one line rather than selecting nothing."""
    if text.strip().lower() == "all":
        return ()
    views = tuple(dict.fromkeys(v.strip().upper() for v in text.split(",") if v.strip()))
    unknown = [v for v in views if v not in VIEW_POSITIONS]
    if not views or unknown:
        raise CxrdataError(f"--views: unknown view position(s) {', '.join(unknown) or repr(text)}; "
                           f"known: {', '.join(VIEW_POSITIONS)}, or all")
    return views
DICOM_ID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{8}){4}")  # fullmatch: nothing else can name a path
DIGITS = re.compile(r"[0-9]+")
LABEL_VALUES = (1.0, 0.0, -1.0, None)


def chexpert_labels() -> list[str]:
    """The 14 CheXpert label names, in the order of the output schema's ``chexpert`` struct."""
    return list(load_schema("mimic").features["chexpert"])


def study_folder(subject_id: int, study_id: int) -> str:
    """``files/p10/p10000032/s50414267`` (the group folder is "p" + the first two digits)."""
    sid = str(subject_id)
    return f"files/p{sid[:2]}/p{sid}/s{study_id}"


def parse_study_datetime(date: str | None, time: str | None) -> datetime | None:
    """StudyDate ``YYYYMMDD`` + StudyTime ``HHMMSS.fff`` whose leading zero was dropped."""
    if not date:
        return None
    whole, _, fraction = (time or "0").partition(".")
    try:
        return datetime.strptime(f"{date} {int(whole):06d}.{(fraction or '0')[:6]}", "%Y%m%d %H%M%S.%f")
    except ValueError:
        return None


def _int(value: str | None, reason: str, what: str) -> int:
    if value is None or not DIGITS.fullmatch(value):
        raise Rejected(reason, f"{what} {value!r} is not an integer")
    return int(value)


def metadata_size(raw: dict[str, Any], record: Record) -> tuple[int, int] | None:
    """(Columns, Rows) of the metadata; cells that are not positive integers are noted, never guessed."""
    columns, rows = raw.get("Columns"), raw.get("Rows")
    if columns is None and rows is None:
        return None
    if not all(v and DIGITS.fullmatch(v) and int(v) > 0 for v in (columns, rows)):
        record.setdefault("_notes", []).append("metadata_size_invalid")  # the decoded image's size is used
        return None
    return int(str(columns)), int(str(rows))


def chexpert_values(raw: dict[str, Any], study_id: int) -> dict[str, float | None]:
    """The study's 14 labels; a cell other than 1.0 / 0.0 / -1.0 / empty rejects the image."""
    values = {}
    for label in chexpert_labels():
        cell = raw.get(label)
        try:
            value = None if cell is None else float(cell)
        except ValueError:
            value = float("nan")
        if value not in LABEL_VALUES:
            raise Rejected("chexpert_invalid", f"study {study_id}: {label} is {cell!r}, not 1.0, 0.0, -1.0 or empty")
        values[label] = value
    return values


@dataclass
class MimicRowStage(RecordStage):
    """Validates one joined metadata row and derives ids, paths, datetime and labels."""

    name: ClassVar[str] = "mimic-row"
    version: ClassVar[str] = "2"
    needs: ClassVar[frozenset[str]] = frozenset({"_raw"})
    drops: ClassVar[frozenset[str]] = frozenset({"_raw"})
    gives: ClassVar[frozenset[str]] = frozenset({
        "dicom_id", "subject_id", "study_id", "view_position", "patient_orientation", "study_datetime", "procedure",
        "image_path", "chexpert", "_image_file", "_report_file", "_original_size"})
    root: Path = Path()
    reports_root: Path = Path()

    def process(self, record: Record) -> Record:
        raw = record.pop("_raw")
        dicom_id = raw["dicom_id"] or ""
        if not DICOM_ID.fullmatch(dicom_id):
            raise Rejected("bad_id", f"dicom_id {dicom_id!r} is not 5 groups of 8 hex digits")
        subject_id = _int(raw["subject_id"], "bad_id", "subject_id")
        study_id = _int(raw["study_id"], "bad_id", "study_id")
        if raw[CONFLICT]:
            raise Rejected(*raw[CONFLICT])
        if record["split"] is None:
            if raw.get("split_raw") is None:
                raise Rejected("split_missing", f"{dicom_id} is not in the split file")
            raise Rejected("split_unknown", f"split {raw['split_raw']!r} is not train/validate/test")
        folder = study_folder(subject_id, study_id)
        when = parse_study_datetime(raw["StudyDate"], raw["StudyTime"])
        if when is None and raw["StudyDate"]:
            record.setdefault("_notes", []).append("bad_study_datetime")
        chexpert = chexpert_values(raw, study_id) if raw[HAS_LABELS] else None
        if chexpert is None:
            record.setdefault("_notes", []).append("chexpert_row_missing")
        record.update(
            dicom_id=dicom_id, subject_id=subject_id, study_id=study_id,
            view_position=raw["ViewPosition"], patient_orientation=raw["PatientOrientationCodeSequence_CodeMeaning"],
            study_datetime=when, procedure=raw["PerformedProcedureStepDescription"],
            image_path=f"{folder}/{dicom_id}.jpg",
            chexpert=chexpert,
            _image_file=str(self.root / folder / f"{dicom_id}.jpg"),
            _report_file=str(self.reports_root / f"{folder}.txt"),
            _original_size=metadata_size(raw, record),
        )
        return record


def decode_report(data: bytes) -> tuple[str, list[str]]:
    """The report's text as upstream reads it (UTF-8, CRLF/CR as LF), without a byte-order mark, and notes.

    Notes: ``report_not_utf8`` (undecodable bytes replaced by U+FFFD), ``report_bom`` (a UTF-8 BOM
    removed), ``report_crlf`` (Windows or old-Mac line ends converted: a copy that went through a
    Windows unzip). None of them changes the sections.
    """
    notes = []
    if data.startswith(codecs.BOM_UTF8):
        notes.append("report_bom")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("utf-8-sig", errors="replace")
        notes.append("report_not_utf8")
    if "\r" in text:
        text = universal_newlines(text)
        notes.append("report_crlf")
    return text, notes


@dataclass
class ReportStage(RecordStage):
    """Reads the study's report and splits it into sections (MIT-LCP's rules, per-study rules included)."""

    name: ClassVar[str] = "report"
    version: ClassVar[str] = "2"
    needs: ClassVar[frozenset[str]] = frozenset({"_report_file", "study_id"})
    gives: ClassVar[frozenset[str]] = frozenset({"findings", "impression", "last_paragraph", "report"})

    def process(self, record: Record) -> Record:
        path = Path(record["_report_file"])
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise Rejected("report_missing", f"{path} does not exist") from None
        except OSError as exc:
            raise Rejected("report_unreadable", f"{path}: {exc.strerror or exc}") from None
        text, notes = decode_report(data)
        sections = report_sections(text, f"s{record['study_id']}")
        if sections.custom_rule:
            notes.append(f"report_custom_rule_{sections.custom_rule}")
        if notes:
            record.setdefault("_notes", []).extend(notes)
        record.update(findings=sections.findings, impression=sections.impression,
                      last_paragraph=sections.last_paragraph, report=text)
        return record


@dataclass(frozen=True)
class MimicOptions:
    """``cxrdata build mimic``: the download and which images to keep."""

    root: Path = option(help="MIMIC-CXR-JPG root (holds files/ and the CSVs).")
    reports_root: Path | None = option(None, "Folder holding the unzipped reports' files/ tree; default: --root.")
    views: tuple[str, ...] = option(FRONTAL_VIEWS, "ViewPositions to keep, comma-separated, or 'all'.")
    single_pathology: bool = option(False, "Keep only studies with exactly one of the 8 pathologies positive "
                                           "(seed 003's curation).", cli=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "views", parse_views(",".join(self.views) or "all"))


@dataclass(frozen=True)
class SinglePathologyFilter:
    """Studies whose CheXpert labels have zero or several of the 8 pathologies positive become no record
    (counted ``not_single_pathology``, in images)."""

    name: str = "single-pathology"

    def apply(self, records: Records) -> tuple[Records, Counter[str]]:
        labels = raw_frame(records, pathologies())
        mask = mask_by_distinct(labels, lambda row: len(positive_pathologies(row)) == 1)
        removed = len(records) - int(mask.sum())
        return keep(records, mask), Counter({"not_single_pathology": removed} if removed else {})


@dataclass
class MimicSource:
    """Images of MIMIC-CXR-JPG joined with split, CheXpert labels and report sections."""

    options: MimicOptions
    dataset: ClassVar[str] = "mimic-cxr-jpg"
    image: ClassVar[type[ImageStage]] = JpegImageStage
    config: str = "mimic"
    schema: str = "mimic"
    splits: tuple[str, ...] = ("train", "validation", "test")
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.options.root

    @property
    def reports_root(self) -> Path:
        return self.options.reports_root or self.options.root

    def check(self) -> None:
        if not self.root.is_dir():
            raise CxrdataError(f"MIMIC-CXR-JPG root {self.root} does not exist or is not a folder")
        require_columns(find_file(self.root, METADATA, "MIMIC-CXR-JPG metadata"), METADATA_COLUMNS)
        require_columns(find_file(self.root, SPLIT, "MIMIC-CXR-JPG split file"), SPLIT_COLUMNS)
        require_columns(find_file(self.root, CHEXPERT, "MIMIC-CXR-JPG CheXpert labels"),
                        ("subject_id", "study_id", *chexpert_labels()))
        for folder, what in ((self.root, "images"), (self.reports_root, "reports")):
            if not (folder / "files").is_dir():
                raise CxrdataError(f"MIMIC-CXR {what} folder {folder / 'files'} does not exist")

    def inputs(self) -> list[InputFile]:
        return [InputFile.of(find_file(self.root, names, "input"), self.root) for names in (METADATA, SPLIT, CHEXPERT)]

    def describe(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"views": list(self.options.views) or "all", "reports_root": str(self.reports_root)}
        if self.options.single_pathology:
            shown["single_pathology"] = True
        return shown

    def versions(self) -> dict[str, dict[str, str]]:
        found = mimic_version(self.root)
        return {self.dataset: found} if found else {}

    def notices(self) -> list[str]:
        return []

    def record_keys(self) -> frozenset[str]:
        return frozenset({"_raw"})

    def filters(self) -> list[SinglePathologyFilter]:
        return [SinglePathologyFilter()] if self.options.single_pathology else []

    def records(self) -> RecordFrame:
        """One record per selected image, kept as columns (``_raw`` is its joined row)."""
        def reader(names: tuple[str, ...], what: str) -> Callable[[], pl.DataFrame]:
            path = find_file(self.root, names, what)
            return lambda: read_text_csv(path, distinct_columns=DISTINCT_COLUMNS)

        joined = join_tables(reader(METADATA, "metadata"), reader(SPLIT, "split"), reader(CHEXPERT, "chexpert"),
                             chexpert_labels(), self.options.views)
        self.excluded.update(joined.excluded)
        frame = joined.frame
        spellings = {v: canonical_split(v) for v in frame["split_raw"].unique().to_list() if v is not None}
        return RecordFrame(frame.with_columns(
            pl.col("dicom_id").fill_null("").alias("id"),
            pl.col("split_raw").replace_strict(spellings, default=None, return_dtype=pl.String).alias("split"),
            pl.col("subject_id").alias("_partition"),
        ))

    def stages(self, image: ImageStage) -> list[Stage]:
        return [MimicRowStage(root=self.root, reports_root=self.reports_root), ReportStage(), image]


ENTRY = DatasetEntry(
    name="mimic",
    summary="MIMIC-CXR-JPG images with split, CheXpert labels and report sections (or a recipe's prompts).",
    options=MimicOptions,
    source_classes=(MimicSource,),
    doctor="cxrdata.sources.doctor.mimic:diagnose_mimic",
    doctor_summary="MIMIC-CXR-JPG (+ reports).",
    sample="cxrdata.sample.mimic:write_mimic_sample",
    sample_options="cxrdata.sample.mimic:SampleOptions",
    sample_summary="MIMIC-CXR-JPG + reports + MS-CXR (v1.0.0 and v1.1.0 CSV/JSON).",
)
