"""Report sectioning (MIT-LCP section_parser behaviour) on the public sample and synthetic reports."""

from __future__ import annotations

import re

import pytest
from cxrdata_testing import SAMPLE_REPORT

from cxrdata.text.sections import (
    ReportSections,
    custom_rules,
    normalize_section_name,
    normalize_whitespace,
    parse_sections,
    report_sections,
)

# The official example from MIT-LCP/mimic-cxr website/content/data/reports.md (FORMATS.md 1.5).
SAMPLE = SAMPLE_REPORT
SAMPLE_FINDINGS = (
    "Cardiac size cannot be evaluated. Large left pleural effusion is new. Small right effusion is new. "
    "The upper lungs are clear. Right lower lobe opacities are better seen in prior CT. "
    "There is no pneumothorax. There are mild degenerative changes in the thoracic spine"
)


def report(*lines: str) -> str:
    """A MIMIC-style report: title line, every line indented by one space (pass "" for a blank line)."""
    return "                                 FINAL REPORT\n" + "".join(f" {line}\n" for line in lines)


def test_sample_report_sections() -> None:
    assert report_sections(SAMPLE) == ReportSections(
        findings=SAMPLE_FINDINGS, impression="Large left pleural effusion", comparison="___"
    )


def test_sample_report_section_names_and_offsets() -> None:
    sections = parse_sections(SAMPLE)
    assert [s.name for s in sections] == [
        "preamble",
        "examination",
        "indication",
        "technique",
        "comparison",
        "findings",
        "impression",
    ]
    for section in sections[1:]:
        assert SAMPLE[section.start :].startswith(section.text)
    assert sections[1].header == "EXAMINATION"


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("IMPRESSON", "impression"),
        ("IMPRESSION", "impression"),
        ("CONCLUSION", "impression"),
        ("FINDINGS AND IMPRESSION", "impression"),
        ("FINDINGS/IMPRESSION", "impression"),
        ("FINDING", "findings"),
        ("FINDINS", "findings"),
        ("COMPARISONS", "comparison"),
        ("COMPARISION", "comparison"),
        ("CLINICAL HISTORY", "history"),
        ("PFI", "history"),
        ("REASON FOR EXAM", "indication"),
        ("CLINICAL INDICATION", "indication"),
        ("WETREAD", "wet read"),
        ("EXAM", "examination"),
        ("TECHNIQUE", "technique"),
        ("IMPRESSION AND RECOMMENDATIONS", "impression"),
        ("PORTABLE AP CHEST", "findings"),
        ("CHEST, PA AND LATERAL", "findings"),
        ("NOTE", "note"),
    ],
)
def test_section_name_normalisation(header: str, name: str) -> None:
    assert normalize_section_name(header) == name


@pytest.mark.parametrize(
    ("findings_header", "impression_header"),
    [("FINDING", "IMPRESSON"), ("FINDINGS", "CONCLUSION"), ("FINDINS", "FINDINGS AND IMPRESSION")],
)
def test_typo_headers_in_a_report(findings_header: str, impression_header: str) -> None:
    text = report(
        "INDICATION:  Cough.",
        "",
        f"{findings_header}:  Left lower lobe opacity.",
        "",
        f"{impression_header}:  Pneumonia.",
    )
    got = report_sections(text)
    assert got.findings == "Left lower lobe opacity."
    assert got.impression == "Pneumonia."


def test_no_headers_gives_full_report_and_last_paragraph() -> None:
    text = report(
        "PA and lateral views of the chest.",
        "",
        "Heart size is normal.  Small right",
        "pleural effusion.",
        "",
        "No pneumothorax.",
    )
    sections = parse_sections(text)
    assert [s.name for s in sections] == ["full report", "last_paragraph"]
    # Upstream keeps everything after the first blank line of the last section.
    assert report_sections(text) == ReportSections(
        last_paragraph="Heart size is normal. Small right pleural effusion.\nNo pneumothorax."
    )
    last = sections[-1]
    assert text[last.start :] == last.text


def test_no_headers_single_paragraph() -> None:
    text = report("Heart size is normal.")
    assert [s.name for s in parse_sections(text)] == ["full report"]
    assert report_sections(text) == ReportSections()


def test_addendum_above_underscores_keeps_last_impression() -> None:
    text = (
        "                                 FINAL ADDENDUM\n"
        " ADDENDUM:  Findings were discussed with Dr. ___ at 10:30.\n"
        " IMPRESSION:  Correction: the effusion is on the right.\n"
        " \n"
        " ______________________________________________________________________________\n"
        "                                 FINAL REPORT\n"
        " INDICATION:  Dyspnea.\n"
        " \n"
        " FINDINGS:  Small left pleural effusion.  No pneumothorax.\n"
        " \n"
        " IMPRESSION:  Small left pleural effusion.\n"
    )
    names = [s.name for s in parse_sections(text)]
    assert names == ["preamble", "addendum", "impression", "indication", "findings", "impression"]
    got = report_sections(text)
    assert got.impression == "Small left pleural effusion."
    assert got.findings == "Small left pleural effusion. No pneumothorax."
    assert "_" not in got.findings


def test_empty_findings_dropped_and_last_occurrence_wins() -> None:
    text = report(
        "CHEST, PA AND LATERAL:",
        "",
        "INDICATION:  Fever.",
        "",
        "FINDINGS:  Right lower lobe opacity.",
        "",
        "FINDINGS:  Bibasilar atelectasis.",
    )
    sections = parse_sections(text)
    # The empty title-like "findings" section is dropped.
    assert [s.name for s in sections] == ["preamble", "indication", "findings", "findings"]
    assert report_sections(text).findings == "Bibasilar atelectasis."
    assert report_sections(text).impression is None


def test_empty_impression_and_findings_fall_back_to_last_paragraph() -> None:
    text = report("COMPARISON:  None.", "", "Lungs are clear.", "", "IMPRESSION: ")
    assert report_sections(text) == ReportSections(comparison="None.", last_paragraph="Lungs are clear.")


def test_header_requires_one_space_caps_and_colon() -> None:
    text = "FINAL REPORT\nFINDINGS: no space before.\n Findings: lower case.\n FINDINGS without colon\n"
    assert [s.name for s in parse_sections(text)] == ["full report"]


def test_header_at_end_of_text_without_trailing_whitespace_is_not_a_header() -> None:
    assert [s.name for s in parse_sections("x\n IMPRESSION:")] == ["full report"]


def test_normalize_whitespace_keeps_paragraphs() -> None:
    assert normalize_whitespace("\n \n a  b\n c\n \n d \n") == "a b c\nd"
    assert normalize_whitespace(" \n ") == ""


def test_next_header_searched_after_first_newline_like_upstream() -> None:
    # Upstream skips to the first newline of a section's text before looking for the next header, so a
    # header right after an empty header line is swallowed into the previous section.
    text = "x\n FINDINGS:\n IMPRESSION: Left effusion.\n More.\n"
    sections = parse_sections(text)
    assert [s.name for s in sections] == ["preamble", "findings"]
    assert report_sections(text).findings == "IMPRESSION: Left effusion. More."


# Upstream's quirks (MIT-LCP/mimic-cxr txt/section_parser.py), followed on purpose: docs/decisions.md.
def test_ndication_is_an_impression_like_upstream() -> None:
    text = report("NDICATION:  Cough.", "", "FINDINGS:  Clear lungs.")
    assert normalize_section_name("NDICATION") == "impression"
    assert report_sections(text) == ReportSections(findings="Clear lungs.", impression="Cough.")


@pytest.mark.parametrize("typo", ["CONCUSION", "COINCLUSION"])
def test_conclusion_typos_without_an_upstream_entry_stay_as_named(typo: str) -> None:
    text = report("FINDINGS:  Clear lungs.", "", f"{typo}:  Normal.")
    assert [s.name for s in parse_sections(text)] == ["preamble", "findings", typo.lower()]
    assert report_sections(text) == ReportSections(findings="Clear lungs.")


def test_pfi_is_an_impression_by_the_contains_rule() -> None:
    text = (" WET READ: ___ 9:14 AM\n  Small effusion.\n PROVISIONAL FINDINGS IMPRESSION (PFI): ___ 9:14 AM\n"
            "  Small effusion.\n " + "_" * 78 + "\n" + report("FINDINGS:  Small left effusion."))
    assert [s.name for s in parse_sections(text)] == ["preamble", "impression", "findings"]
    # No final IMPRESSION: the provisional block is the impression, up to the next header (upstream).
    assert report_sections(text).impression == "___ 9:14 AM Small effusion. " + "_" * 78 + " FINAL REPORT"
    assert report_sections(text).findings == "Small left effusion."


def test_clinical_information_and_questions_is_never_a_header() -> None:
    text = report("EXAMINATION:  CHEST", "", "CLINICAL INFORMATION & QUESTIONS TO BE ANSWERED:  Cough.", "",
                  "IMPRESSION:  Normal.")
    sections = parse_sections(text)
    assert [s.name for s in sections] == ["preamble", "examination", "impression"]
    assert "QUESTIONS TO BE ANSWERED:  Cough." in sections[1].text


def test_inline_study_header_is_findings_and_a_title_line_is_not_a_header() -> None:
    inline = report("INDICATION:  Cough.", "", "PA AND LATERAL VIEWS OF THE CHEST:  Clear lungs.", "",
                    "IMPRESSION:  Normal.")
    assert report_sections(inline) == ReportSections(findings="Clear lungs.", impression="Normal.")
    titled = report("HISTORY:  Cough.", "", "CHEST, SINGLE AP PORTABLE VIEW.", "", "COMPARISON:  ___.", "",
                    "Clear lungs.", "", "No effusion.")
    assert [s.name for s in parse_sections(titled)] == ["preamble", "history", "comparison", "last_paragraph"]
    assert report_sections(titled) == ReportSections(last_paragraph="Clear lungs.\nNo effusion.", comparison="___.")


@pytest.mark.parametrize("line_end", ["\r\n", "\r"])
def test_windows_and_old_mac_line_ends_give_the_same_sections(line_end: str) -> None:
    text = report("COMPARISON:  None.", "", "Heart size is normal.", "", "No effusion.")
    assert report_sections(text.replace("\n", line_end)) == report_sections(text) == ReportSections(
        last_paragraph="Heart size is normal.\nNo effusion.", comparison="None.")
    assert report_sections(SAMPLE.replace("\n", line_end)) == report_sections(SAMPLE)


# The official per-study rules (txt/section_parser.py custom_mimic_cxr_rules, create_section_files.py).
def test_a_span_rule_gives_only_that_span_as_impression() -> None:
    text = report("Xx.  Clear lungs", "and no effusion.", "", "FINDINGS:  Other.")
    # s51410602 is [47, 320]: the span starts after the title line (46 characters) and its first space.
    assert report_sections(text, "s51410602") == ReportSections(
        impression="Xx. Clear lungs and no effusion.\nFINDINGS: Other.", custom_rule="span")
    assert report_sections(text) == ReportSections(findings="Other.")
    assert report_sections(text, "s58235663") == ReportSections(custom_rule="span")  # [0, 0]: nothing


def test_a_section_rule_takes_the_last_section_of_that_name() -> None:
    text = report("COMPARISON:  None.", "", "FINDINGS:  Clear.", "", "RECOMMENDATION(S):  Old.", "",
                  "RECOMMENDATION(S):  Small effusion.")
    # s59067458 -> recommendations (files/p11/p11984647/s59067458.txt)
    assert report_sections(text, "s59067458") == ReportSections(
        findings="Clear.", impression="Small effusion.", comparison="None.", custom_rule="section")
    assert report_sections(text, "s56451190") == ReportSections(  # -> note: no NOTE section here
        findings="Clear.", comparison="None.", custom_rule="section_not_found")


def test_the_custom_rules_file_holds_upstreams_54_studies() -> None:
    names, spans = custom_rules()
    assert len(names) == 23 and len(spans) == 31 and not set(names) & set(spans)
    assert names["s56451190"].section == "note" and names["s51491012"].section == "history"
    assert spans["s50525523"].span == (201, 349) and spans["s52119491"].span == (179, 454)
    assert sum(rule.span == (0, 0) for rule in spans.values()) == 8
    assert all(re.fullmatch(rf"files/p(\d\d)/p\1\d{{6}}/{study}\.txt", rule.file)
               for study, rule in {**names, **spans}.items())
