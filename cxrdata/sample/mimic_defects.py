"""The four deliberate defects of the default synthetic MIMIC-CXR-JPG sample: a truncated JPEG, a JPEG of
random bytes, an image missing from the split CSV and a study without its report (the table defects of
``table_defects=True`` are :mod:`cxrdata.sample.mimic_table_defects`)."""

from __future__ import annotations

from dataclasses import dataclass

from cxrdata.sample.mimic_plan import FRONTAL, Rng, Study, StudyImage
from cxrdata.sample.reports import STYLES


@dataclass
class Defects:
    truncated: str | None = None
    corrupt: str | None = None
    missing_split: str | None = None
    missing_report: int | None = None


def choose_defects(rng: Rng, studies: list[Study], avoid: set[str]) -> Defects:
    """Four defects, each in a different study when the sample allows, never on an ``avoid`` image."""
    pool = [(s, im) for s in studies for im in s.images
            if im.dicom_id not in avoid and im.view in (*FRONTAL, "LATERAL")]
    used: set[int] = set()

    def take(candidates: list[tuple[Study, StudyImage]]) -> tuple[Study, StudyImage]:
        if not candidates:
            raise ValueError("the sample is too small for its defects; use more subjects or defects=False")
        fresh = [c for c in candidates if c[0].study_id not in used] or candidates
        study, image = fresh[int(rng.integers(len(fresh)))]
        candidates.remove((study, image))
        used.add(study.study_id)
        return study, image

    defects = Defects()
    for kind in ("truncated", "corrupt"):
        image = take(pool)[1]
        image.defect = kind
        setattr(defects, kind, image.dicom_id)
    defects.missing_split = take(pool)[1].dicom_id
    quiet = [(s, s.images[0]) for s in studies
             if s.style == "standard" and not {im.dicom_id for im in s.images} & avoid]
    plain = [(s, s.images[0]) for s in studies if s.style in STYLES and s.line_end == "\n"]  # no layout lost
    defects.missing_report = take(quiet or plain or [(s, s.images[0]) for s in studies])[0].study_id
    return defects
