"""The real report layouts of FORMATS.md 1.5 in the synthetic MIMIC-CXR sample, one study each.

They are chosen with their own random stream after the plan, so everything else in the sample
(images, boxes, defects, the other reports) is drawn as without them. A chosen study keeps its exam,
images and findings; its report is written again in the layout, with the labels its new sentences
imply. Each layout takes a study from a style that keeps at least one other study, so every random
style of :data:`~cxrdata.sample.reports.STYLES` stays in the sample. The two studies under an official
per-study rule (``custom_span``, ``custom_section``) take that rule's study id and the subject id of
the file upstream names beside it; ``crlf`` writes a headerless report with Windows line ends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from cxrdata.sample.reports import LAYOUTS, Report, compose_report, compose_span_report, phrases
from cxrdata.text.sections import custom_rules

if TYPE_CHECKING:
    from cxrdata.sample.mimic_plan import Study

CRLF = "crlf"
SPAN_STUDY = "s51410602"  # a custom_indices study of section_parser.py: [47, 320]
SECTION_STUDY = "s59067458"  # a custom_section_names study: its conclusion is under RECOMMENDATION(S)


def _ids_of(study: str, file: str) -> tuple[int, int]:
    """(subject_id, study_id) of ``files/p11/p11984647/s59067458.txt``."""
    return int(file.split("/")[2][1:]), int(study[1:])


def _move(studies: list[Study], study: Study, subject_id: int, study_id: int) -> None:
    """Give ``study`` these ids; every study of its patient moves to the new subject id."""
    if any(s.subject_id == subject_id or s.study_id == study_id for s in studies):
        raise ValueError(f"the sample already uses subject {subject_id} or study {study_id}")
    old = study.subject_id
    for other in studies:
        if other.subject_id == old:
            other.subject_id = subject_id
    study.study_id = study_id


def _rewrite(study: Study, style: str, report: Report) -> None:
    study.style, study.report, study.labels = style, report.text, report.labels


def place_layouts(studies: list[Study], seed: int) -> dict[str, int]:
    """Put each layout on one study (when the sample has one to spare); layout -> study_id."""
    rng = np.random.default_rng([seed, 2])
    left = Counter(s.style for s in studies)
    taken: set[int] = set()

    def take(fits: Callable[[Study], bool], keep_style: bool = False) -> Study | None:
        pool = [s for s in studies if id(s) not in taken and fits(s) and (keep_style or left[s.style] > 1)]
        if not pool:
            return None
        study = pool[int(rng.integers(len(pool)))]
        taken.add(id(study))
        left[study.style] -= 0 if keep_style else 1
        return study

    names, spans = custom_rules()
    placed: dict[str, int] = {}
    if crlf := take(lambda s: s.style == "no_headers", keep_style=True):
        crlf.line_end = "\r\n"
        placed[CRLF] = crlf.study_id
    # A study without findings, preferably not a standard one (the missing-report defect wants those).
    normal = [lambda s: not s.positives and not s.plan.uncertain and s.style != "standard",
              lambda s: not s.positives and not s.plan.uncertain]
    if study := take(normal[0]) or take(normal[1]):
        _rewrite(study, "custom_span", compose_span_report(spans[SPAN_STUDY].span))
        _move(studies, study, *_ids_of(SPAN_STUDY, spans[SPAN_STUDY].file))
        placed["custom_span"] = study.study_id
    for layout in LAYOUTS:
        if (study := take(lambda s: True)) is None:
            break
        plan = replace(study.plan, style=layout)
        if layout == "custom_section":
            rule = names[SECTION_STUDY]
            plan = replace(plan, conclusion_header=phrases()["layouts"]["custom_section_headers"][rule.section])
            _move(studies, study, *_ids_of(SECTION_STUDY, rule.file))
        again = np.random.default_rng()
        again.bit_generator.state = study.report_state  # the same sentences, in the new layout
        _rewrite(study, layout, compose_report(again, plan))
        study.plan = plan
        placed[layout] = study.study_id
    return placed
