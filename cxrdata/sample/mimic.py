"""A synthetic MIMIC-CXR-JPG 2.1.0 download with its reports and MS-CXR, byte-identical for a seed.

Layout, names and value quirks follow FORMATS.md sections 1-2: ``files/pXX/pXXXXXXXX/sXXXXXXXX/``
holding ``<dicom_id>.jpg``, reports beside the study folders, the gzip CSVs (StudyTime without its
leading zero), the 2.1.0 test-set labels, IMAGE_FILENAMES, checksums, and MS-CXR 0.1 / 1.1.0 under
``ms-cxr/``. Each study's labels come from the sentences of its report; each MS-CXR box frames the
finding drawn in the image. The real report layouts of FORMATS.md 1.5 (CRLF, WET READ, typo headers,
the official per-study rules, ...) are each placed on one study (:mod:`cxrdata.sample.mimic_layouts`).
The default sample carries four deliberate defects (see
:class:`MimicSample`) so that a build shows its rejects; ``defects=False`` gives a clean tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxrdata.recipe import option
from cxrdata.sample import tables
from cxrdata.sample.mimic_defects import Defects, choose_defects
from cxrdata.sample.mimic_images import choose_images, choose_sizes, place_findings, write_images
from cxrdata.sample.mimic_layouts import place_layouts
from cxrdata.sample.mimic_plan import FRONTAL, Study, config, plan_studies
from cxrdata.sample.mimic_tables import CHEXPERT, METADATA, NEGBIO, SPLIT, TEST_LABELS, write_tables
from cxrdata.sample.mscxr import write_mscxr
from cxrdata.vocabulary import pathologies

__all__ = ["CHEXPERT", "FRONTAL", "METADATA", "NEGBIO", "SPLIT", "TEST_LABELS", "MimicSample", "SampleOptions",
           "config", "write_mimic_sample"]


@dataclass(frozen=True)
class SampleOptions:
    """``cxrdata sample-data mimic``: how large a sample."""

    subjects: int = option(12, "Patients to write.", bounds=(1, None))


@dataclass(frozen=True)
class MimicSample:
    """What :func:`write_mimic_sample` wrote; every count is exact."""

    root: Path
    seed: int
    subjects: int
    studies: int
    images: int  # metadata rows = JPEG files (defective ones included)
    frontal_images: int  # ViewPosition PA or AP
    lateral_images: int  # ViewPosition LATERAL, LL or empty
    reports: int  # report .txt files written
    layouts: dict[str, int]  # real report layout (sample.mimic_layouts) -> the study_id that has it
    table_defects: dict[str, str]  # table defect (sample.mimic_table_defects) -> its dicom_id or study_id
    single_pathology_studies: int  # exactly one of the 8 pathologies labelled 1.0 in the CheXpert file
    image_sizes: dict[str, tuple[int, int]]  # dicom_id -> (width, height) = (Columns, Rows)
    full_size: tuple[str, ...]  # dicom_ids written at full resolution
    truncated_jpeg: str | None  # dicom_id of a JPEG cut in half
    corrupt_jpeg: str | None  # dicom_id of a .jpg that is random bytes
    missing_report: int | None  # study_id whose report .txt is absent
    missing_split: str | None  # dicom_id in the metadata but not in the split CSV
    mscxr_csv: dict[str, Path]  # MS-CXR file version ("1.0.0", "1.1.0") -> CSV
    mscxr_json: dict[str, Path]
    mscxr_rows: dict[str, int]  # boxes
    mscxr_groups: dict[str, int]  # distinct (dicom_id, category_name, label_text)
    mscxr_images: dict[str, int]
    mscxr_duplicate_rows: dict[str, int]  # rows repeating an earlier row verbatim (a defect)

    @property
    def defective_images(self) -> tuple[str, ...]:
        """dicom_ids whose JPEG does not decode."""
        return tuple(d for d in (self.truncated_jpeg, self.corrupt_jpeg) if d)

    def summary(self) -> str:
        return f"wrote {self.images} images of {self.studies} studies of {self.subjects} subjects to {self.root}"


def _positives(study: Study) -> int:
    """How many of the 8 pathologies the study's labels mark positive."""
    return sum(study.labels.get(p) == 1.0 for p in pathologies())


def write_mimic_sample(
    out: Path | str, subjects: int = 12, seed: int = 0, full_size_images: int = 3, defects: bool = True,
    table_defects: bool = False,
) -> MimicSample:
    """Write a synthetic MIMIC-CXR-JPG tree (+ reports, + MS-CXR under ``ms-cxr/``) into ``out``.

    ``full_size_images`` images get a real full-resolution size (MS-CXR images first); the rest are
    small (long side 320-640 px) to keep tests fast. With ``defects`` one JPEG is truncated, one is
    random bytes, one study has no report and one image is missing from the split CSV. With
    ``table_defects`` the CSVs also carry duplicated, conflicting and invalid rows
    (:mod:`cxrdata.sample.mimic_table_defects`; ``MimicSample.table_defects`` says where).
    """
    if subjects < 1:
        raise ValueError("subjects must be at least 1")
    root = Path(out)
    rng = np.random.default_rng(seed)
    studies = plan_studies(rng, subjects)
    layouts = place_layouts(studies, seed)
    mscxr, full = choose_images(rng, studies, full_size_images)
    choose_sizes(rng, studies, full)
    boxes = place_findings(studies, mscxr)
    found = choose_defects(rng, studies, mscxr | {im.dicom_id for im in full}) if defects else Defects()

    table_rng = np.random.default_rng([seed, 6]) if table_defects else None
    files, placed = write_tables(root, studies, found, table_rng)
    files += write_images(root, studies, seed)
    reports = [tables.write(root / f"{s.folder}.txt", s.report.replace("\n", s.line_end).encode())
               for s in studies if s.study_id != found.missing_report]
    tables.write_sha256sums(root, files)
    written = write_mscxr(root, boxes, config()["mscxr_categories"], defects=defects)

    images = [im for s in studies for im in s.images]
    return MimicSample(
        root=root, seed=seed, subjects=subjects, studies=len(studies), images=len(images),
        frontal_images=sum(im.view in FRONTAL for im in images),
        lateral_images=sum(im.view not in FRONTAL for im in images),
        reports=len(reports), layouts=layouts, table_defects=placed,
        single_pathology_studies=sum(_positives(s) == 1 for s in studies),
        image_sizes={im.dicom_id: (im.width, im.height) for im in images},
        full_size=tuple(im.dicom_id for im in full),
        truncated_jpeg=found.truncated, corrupt_jpeg=found.corrupt,
        missing_report=found.missing_report, missing_split=found.missing_split,
        mscxr_csv={v: f.csv for v, f in written.items()},
        mscxr_json={v: f.json for v, f in written.items()},
        mscxr_rows={v: f.rows for v, f in written.items()},
        mscxr_groups={v: f.groups for v, f in written.items()},
        mscxr_images={v: f.images for v, f in written.items()},
        mscxr_duplicate_rows={v: f.duplicate_rows for v, f in written.items()},
    )
