"""Synthetic MIMIC-CXR free-text reports in the real file layout, consistent with the study's labels.

Layout (FORMATS.md 1.5): a centred ``FINAL REPORT`` title, every other line indented by one space,
blank lines written as a single space, lines wrapped at 79 characters, sentences separated by two
spaces (a line broken at such a gap keeps one trailing space), PHI as ``___``. The random
:data:`STYLES` cover what the MIT-LCP section parser meets: misspelled headers, no FINDINGS, no
headers at all, FINDINGS AND IMPRESSION, and an addendum on top. The :data:`LAYOUTS` are the rarer
real layouts the sample places once each: a title line without colon, an inline header naming the
study, the ``NDICATION`` / ``CONCUSION`` / ``COINCLUSION`` typos, ``CLINICAL INFORMATION & QUESTIONS
TO BE ANSWERED``, WET READ and PFI blocks before the final report, and the two kinds of studies with
official per-study rules (:func:`compose_span_report` for a character span). Labels are derived from
the sentences actually written, so a report never contradicts its CheXpert row. Every phrase is in
``report_phrases.yaml``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TypeVar

import numpy as np

from cxrdata.yamlfiles import load_yaml

WIDTH = 79  # longest line, the leading space included
TITLE_INDENT = 33
Rng = np.random.Generator
T = TypeVar("T")
STYLES = ("standard", "variant_headers", "no_findings", "no_headers", "findings_and_impression", "addendum")
LAYOUTS = ("title_line", "inline_header", "ndication", "concusion", "coinclusion", "clinical_questions", "wet_read",
           "pfi", "custom_section")
UNDERSCORES = "_" * (WIDTH - 1)  # the line between an addendum or a wet read and the final report


@cache
def phrases() -> dict:
    """The report vocabulary (``report_phrases.yaml``)."""
    return load_yaml(resources.files("cxrdata.sample").joinpath("report_phrases.yaml").read_text())


@dataclass(frozen=True)
class Finding:
    """A pathology at a location, as the report words it; ``regions`` frame each of its boxes."""

    pathology: str
    location: str  # key of ``locations`` in report_phrases.yaml
    phrase: str  # short noun phrase, e.g. "Small left pleural effusion" (MS-CXR label_text)
    regions: tuple[tuple[str, ...], ...]  # one tuple of chest region names per box
    words: dict[str, str] = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True)
class ReportPlan:
    """What one study's report says; ``resolved`` are earlier findings now gone."""

    exam: str
    technique: str
    style: str = "standard"
    positives: Sequence[Finding] = ()
    uncertain: Sequence[Finding] = ()
    resolved: Sequence[Finding] = ()
    devices: int = 0
    conclusion_header: str = ""  # style custom_section: the header the conclusion is written under


@dataclass(frozen=True)
class Report:
    """A report file's text and the CheXpert labels its sentences imply."""

    text: str
    labels: dict[str, float]  # only the labels the text mentions; No Finding included when it applies


def _choice(rng: Rng, options: Sequence[T]) -> T:
    return options[int(rng.integers(len(options)))]


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:]


def pick_finding(rng: Rng, pathology: str, location: str | None = None) -> Finding:
    """Choose how a finding of ``pathology`` is worded: location, term, size, number."""
    spec = phrases()["pathologies"][pathology]
    location = location or _choice(rng, spec["locations"])
    loc = phrases()["locations"][location]
    term = _choice(rng, spec["terms"])
    size = _choice(rng, spec["sizes"]) if term.get("sized", True) else ""
    plural = "plural" in term and (loc.get("plural", False) or rng.random() < spec.get("plural_share", 0.0))
    word = term["plural"] if plural else term["word"]
    if loc["adj"] or loc.get("implicit"):
        bare = " ".join(filter(None, [size, loc["adj"], word]))
    else:
        bare = " ".join(filter(None, [size, word, loc["pp"]]))
    core = " ".join(filter(None, [size, word]))
    article = ""
    if term.get("count") and not plural:
        article = "an " if bare[0] in "aeiou" else "a "
    core_article = "an " if article and core[0] in "aeiou" else article
    words = {
        "bare": bare, "np": article + bare, "core": core_article + core, "pp": loc["pp"],
        "is": "are" if plural else "is", "has": "have" if plural else "has",
    }
    regions = tuple(tuple(box) for box in loc["boxes"])
    return Finding(pathology, location, _sentence(bare), regions, words)


def _say(rng: Rng, finding: Finding, kind: str) -> str:
    template = _choice(rng, phrases()["pathologies"][finding.pathology][kind])
    return _sentence(template.format(**finding.words))


def _usable(entries: list[dict], taken: set[str], clear: bool) -> list[dict]:
    """Entries that contradict neither a label already set nor (``clear`` ones) a lung finding."""
    return [e for e in entries if not taken & set(e.get("labels", ())) and (clear or not e.get("clear"))]


def _negations(rng: Rng, taken: set[str], clear: bool) -> list[dict]:
    """1-3 denial sentences that do not contradict anything ``taken`` (labels already set)."""
    free = _usable(phrases()["negations"], taken, clear)
    picked: list[dict] = []
    for k in rng.permutation(len(free))[: int(rng.integers(1, 4))]:
        if not set(free[k]["labels"]) & {lab for n in picked for lab in n["labels"]}:
            picked.append(free[k])
    return picked


def _body(rng: Rng, plan: ReportPlan) -> tuple[list[str], list[str], dict[str, float]]:
    """(findings sentences, impression sentences, labels)."""
    p = phrases()
    labels: dict[str, float] = {}
    sentences = [str(s) for s in rng.permutation(p["support_devices"])[: plan.devices]]
    if plan.devices:
        labels["Support Devices"] = 1.0
    for kind, value, findings in (("positive", 1.0, plan.positives), ("uncertain", -1.0, plan.uncertain),
                                  ("resolved", 0.0, plan.resolved)):
        for f in findings:
            sentences.append(_say(rng, f, kind))
            labels.setdefault(f.pathology, value)
    clear = not {f.pathology for f in (*plan.positives, *plan.uncertain)} & set(p["parenchymal"])
    denials = _negations(rng, set(labels), clear)
    for n in denials:
        labels.update(dict.fromkeys(n["labels"], 0.0))
    normal = _usable(p["normal_sentences"], set(), clear)
    chosen = rng.permutation(len(normal))[: rng.integers(0, 3)]
    extra = [n["text"] for n in denials] + [normal[k]["text"] for k in chosen]
    sentences += [extra[k] for k in rng.permutation(len(extra))]
    impression = [_say(rng, f, "impression") for f in plan.positives]
    impression += [_say(rng, f, "uncertain") for f in plan.uncertain]
    if not any(v != 0.0 for k, v in labels.items() if k != "Support Devices"):
        labels["No Finding"] = 1.0
        impression = [_choice(rng, p["normal_impressions"])]
    return sentences, impression, labels


def _wrap(text: str, width: int = WIDTH - 1) -> list[str]:
    """Lines of at most ``width``; a break at a two-space sentence gap keeps one space at the line's end."""
    lines = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]
    out, end = [], 0
    for line in lines:
        end = text.index(line, end) + len(line)
        gap = text.startswith("  ", end) and len(line) < width
        out.append(line + " " if gap else line)
    return out


def _inline(header: str, text: str) -> list[str]:
    return [*_wrap(f"{header}:  {text}"), ""]


def _section(header: str, paragraphs: Sequence[str]) -> list[str]:
    lines = [f"{header}: ", ""]
    for para in paragraphs:
        lines += [*_wrap(para), ""]
    return lines


def _impression_text(rng: Rng, impression: list[str]) -> str:
    if len(impression) > 1 and rng.random() < 0.5:
        return "  ".join(f"{k}. {s}" for k, s in enumerate(impression, 1))
    return "  ".join(impression)


def _header(rng: Rng, section: str, variant: bool) -> str:
    names = phrases()["headers"][section]
    return _choice(rng, names[1:] if variant and len(names) > 1 else names[:1])


def _lines(rng: Rng, plan: ReportPlan, findings: list[str], impression: list[str]) -> list[str]:
    p = phrases()
    findings_text, impression_text = "  ".join(findings), _impression_text(rng, impression)
    if plan.style == "no_headers":
        return [f"{plan.exam} ___", "", "Comparison is made to the study from ___.", "",
                *_wrap(findings_text), "", *_wrap(impression_text), ""]
    variant = plan.style == "variant_headers"
    lines = _inline(_header(rng, "examination", False), plan.exam)
    lines += _inline(_header(rng, "indication", variant), _choice(rng, p["indications"]))
    lines += _inline(_header(rng, "technique", False), plan.technique)
    lines += _inline(_header(rng, "comparison", variant), _choice(rng, p["comparisons"]))
    if plan.style == "no_findings":
        lines += _section(_header(rng, "impression", False), ["  ".join(findings + impression)])
    elif plan.style == "findings_and_impression":
        both = "  ".join(findings + impression)
        lines += _section(_header(rng, "findings_and_impression", rng.random() < 0.5), [both])
    else:
        lines += _section(_header(rng, "findings", variant), [findings_text])
        lines += _section(_header(rng, "impression", variant), [impression_text])
    if rng.random() < 0.2:
        lines += _inline(_header(rng, "notification", False), _choice(rng, p["notifications"]))
    return lines


def _layout_lines(rng: Rng, plan: ReportPlan, findings: list[str], impression: list[str]) -> list[str]:
    """The final report's lines for one of :data:`LAYOUTS`."""
    p, lay = phrases(), phrases()["layouts"]
    findings_text, impression_text = "  ".join(findings), _impression_text(rng, impression)
    both = "  ".join(findings + impression)
    indication, comparison = _choice(rng, p["indications"]), _choice(rng, p["comparisons"])
    if plan.style == "title_line":
        return [*_inline("HISTORY", indication), lay["title_lines"][plan.exam], "", *_inline("COMPARISON", comparison),
                *_wrap(findings_text), "", *_wrap(impression_text)]
    indication_header = {"ndication": "NDICATION", "clinical_questions": lay["clinical_questions"]}
    if plan.style == "ndication":
        indication = lay["ndication_indication"]
    lines = _inline("EXAMINATION", plan.exam) + _inline(indication_header.get(plan.style, "INDICATION"), indication)
    lines += _inline("TECHNIQUE", plan.technique) + _inline("COMPARISON", comparison)
    if plan.style == "inline_header":
        study_header = lay["study_headers"][plan.exam]
        return lines + _inline(study_header, findings_text) + _section("IMPRESSION", [impression_text])
    if plan.style == "ndication":
        return lines + _section("FINDINGS", [both])
    if plan.style == "custom_section":
        if not plan.conclusion_header:
            raise ValueError("style custom_section needs the plan's conclusion_header")
        return lines + _inline(plan.conclusion_header, both)
    conclusion = plan.style.upper() if plan.style in ("concusion", "coinclusion") else "IMPRESSION"
    return lines + _section("FINDINGS", [findings_text]) + _section(conclusion, [impression_text])


def _preliminary(plan: ReportPlan, impression: list[str]) -> list[str]:
    """WET READ / PFI block above the final report: heading lines, text indented by two spaces, underscores."""
    lines = []
    for heading in phrases()["layouts"][plan.style]:
        lines += [f" {heading}", *(f"  {line}" for line in _wrap("  ".join(impression), WIDTH - 2))]
    return [*lines, f" {UNDERSCORES}"]


def _render(title: str, lines: list[str]) -> list[str]:
    while lines and not lines[-1]:
        lines = lines[:-1]
    return [" " * TITLE_INDENT + title, *(" " + line for line in lines)]


def compose_report(rng: Rng, plan: ReportPlan) -> Report:
    """The ``.txt`` content of one study's report and the labels its sentences imply."""
    if plan.style not in STYLES + LAYOUTS:
        raise ValueError(f"unknown report style {plan.style!r}; known: {STYLES + LAYOUTS}")
    p = phrases()
    findings, impression, labels = _body(rng, plan)
    build = _layout_lines if plan.style in LAYOUTS else _lines
    out = _render(p["title"], build(rng, plan, findings, impression))
    if plan.style == "addendum":
        top = [*_inline(_header(rng, "addendum", False), _choice(rng, p["addenda"])), UNDERSCORES]
        out = _render(p["addendum_title"], top) + out
    if plan.style in ("wet_read", "pfi"):
        out = _preliminary(plan, impression) + out
    return Report("\n".join(out) + "\n", labels)


def compose_span_report(span: tuple[int, int]) -> Report:
    """A report whose conclusion is exactly ``text[start:end]`` (an official per-study span rule)."""
    p, lay = phrases(), phrases()["layouts"]["custom_span"]
    lines = _wrap("  ".join(lay["sentences"]))
    text = "\n".join(_render(p["title"], [*lines, "", *lay["after"]])) + "\n"
    start, end = span
    if text[start:end] != "\n ".join(lines).rstrip():
        raise ValueError(f"layouts.custom_span.sentences do not fill the span {span} exactly")
    denials = {n["text"]: n["labels"] for n in p["negations"]}
    labels = {label: 0.0 for s in lay["sentences"] for label in denials.get(s, ())}
    if any(s in p["normal_impressions"] for s in lay["sentences"]):
        labels["No Finding"] = 1.0
    return Report(text, labels)
