"""Sections of a MIMIC-CXR free-text report.

Re-implements the behaviour of MIT-LCP/mimic-cxr ``txt/section_parser.py`` and the section choice of
``txt/create_section_files.py`` (FORMATS.md 1.5; docs/decisions.md, "Report sections"):

- line ends are read as Python's text mode reads them (CRLF and CR become LF), as upstream does;
- a header is a newline, one space, upper-case words and a colon followed by whitespace;
- text before the first header is ``preamble``; a report without headers is one ``full report`` section;
- header names are normalised with upstream's table, quirks included (``section_names.yaml``);
- empty ``findings`` / ``impression`` sections are dropped;
- when neither is left, the last section is split at its first blank line (``"\\n \\n"``) and the rest
  becomes ``last_paragraph``;
- :func:`report_sections` keeps the *last* occurrence of each of impression, findings, last_paragraph
  and comparison, and applies the official per-study rules (``mimic_custom_sections.yaml``).

Known differences: text is whitespace-normalised (upstream only strips it); ``last_paragraph.start``
points at the text itself (upstream is off by the separator's length); a section-name rule whose
section the report lacks falls back to the normal rules (upstream raises ``ValueError``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from cxrdata.yamlfiles import load_yaml

HEADER = re.compile(r"\n ([A-Z ()/,-]+):\s", re.DOTALL)
FIELDS = ("findings", "impression", "last_paragraph", "comparison")
PARAGRAPH_BREAK = "\n \n"
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")


@dataclass(frozen=True)
class Section:
    """One section: canonical name, raw text (as in the report) and its character offset."""

    name: str
    text: str
    start: int
    header: str = ""


@dataclass(frozen=True)
class ReportSections:
    """The sections used downstream; ``None`` when absent or empty.

    Text is whitespace-normalised: line wraps joined, runs of spaces collapsed, paragraph breaks (blank
    lines) kept as a single ``"\\n"``.
    """

    findings: str | None = None
    impression: str | None = None
    last_paragraph: str | None = None
    comparison: str | None = None
    custom_rule: str | None = None  # "span" / "section": an official per-study rule gave the impression;
    # "section_not_found": the study has a section-name rule but no such section (normal rules used)


@dataclass(frozen=True)
class CustomRule:
    """An official per-study rule: the section that holds the conclusion, or its character span."""

    file: str
    section: str = ""
    span: tuple[int, int] = (0, 0)


@cache
def custom_rules() -> tuple[dict[str, CustomRule], dict[str, CustomRule]]:
    """(section-name rules, span rules) by ``s<study_id>``, from ``mimic_custom_sections.yaml``."""
    data = load_yaml(resources.files("cxrdata.text").joinpath("mimic_custom_sections.yaml").read_text())
    names = {study: CustomRule(v["file"], section=v["section"]) for study, v in data["section_names"].items()}
    spans = {study: CustomRule(v["file"], span=tuple(v["span"])) for study, v in data["spans"].items()}
    return names, spans


@cache
def _names() -> dict:
    return load_yaml(resources.files("cxrdata.text").joinpath("section_names.yaml").read_text())


@cache
def normalize_section_name(header: str) -> str:
    """Canonical name of a raw header, e.g. ``"IMPRESSON"`` -> ``"impression"``."""
    name = header.lower().strip()
    data = _names()
    if name in data["exact"]:
        return data["exact"][name]
    for main in data["contains"]:
        if main in name:
            return main
    if any(pattern in name for pattern in data["findings_patterns"]):
        return "findings"
    return name


def universal_newlines(text: str) -> str:
    """The text as Python's text mode reads a file (what upstream sections): CRLF and CR become LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def parse_sections(text: str) -> list[Section]:
    """All sections of a report in order, after name normalisation and the upstream clean-up rules.

    Offsets refer to the text after :func:`universal_newlines`.
    """
    text = universal_newlines(text)
    sections: list[Section] = []
    match = HEADER.search(text)
    if match is None:
        sections.append(Section("full report", text, 0))
    else:
        sections.append(Section("preamble", text[: match.start(1)], 0))
    while match is not None:
        header = match.group(1)
        start = match.end()
        # Like upstream: look for the next header only after the first newline of this section's text.
        skip = text.find("\n", start)
        following = HEADER.search(text, skip if skip != -1 else start)
        end = following.start() if following else len(text)
        sections.append(Section(normalize_section_name(header), text[start:end], start, header))
        match = following

    sections = [s for s in sections if s.name not in ("findings", "impression") or s.text.strip()]
    names = {s.name for s in sections}
    if "findings" not in names and "impression" not in names and PARAGRAPH_BREAK in sections[-1].text:
        last = sections[-1]
        first, rest = last.text.split(PARAGRAPH_BREAK, 1)
        sections[-1] = Section(last.name, first, last.start, last.header)
        sections.append(Section("last_paragraph", rest, last.start + len(first) + len(PARAGRAPH_BREAK)))
    return sections


def normalize_whitespace(text: str) -> str:
    """Join line wraps and collapse runs of whitespace; paragraph breaks (blank lines) become one ``\\n``."""
    paragraphs = (" ".join(p.split()) for p in _BLANK_LINE.split(text))
    return "\n".join(p for p in paragraphs if p)


def last_section(sections: list[Section], name: str) -> Section | None:
    """The last section with this canonical name (the rule of ``create_section_files.py``)."""
    for section in reversed(sections):
        if section.name == name:
            return section
    return None


def _text(section: Section | None) -> str | None:
    return (normalize_whitespace(section.text) or None) if section else None


def report_sections(text: str, study: str | None = None) -> ReportSections:
    """Findings, impression, last paragraph and comparison of a report (last occurrence of each).

    ``study`` (``"s50414267"``) selects the official per-study rules: a span rule gives only an
    impression (``text[start:end]``, unsectioned, as upstream); a section-name rule replaces the
    impression with the last section of that name and keeps the other sections.
    """
    text = universal_newlines(text)
    names, spans = custom_rules()
    if study in spans:
        start, end = spans[study].span
        return ReportSections(impression=normalize_whitespace(text[start:end]) or None, custom_rule="span")
    sections = parse_sections(text)
    found: dict[str, str | None] = {name: _text(last_section(sections, name)) for name in FIELDS}
    if study in names:
        named = last_section(sections, names[study].section)
        if named is None:
            return ReportSections(**found, custom_rule="section_not_found")
        return ReportSections(**{**found, "impression": _text(named)}, custom_rule="section")
    return ReportSections(**found)
