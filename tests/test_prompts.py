"""Prompts end to end: section text -> sentences -> mentions -> rule-based anatomy -> locations -> prompt.

The table covers each of the 27 location terms, each negation pattern and each merge rule, with the exact
expected prompt (or drop reason) for each hand-written text.
"""

from __future__ import annotations

import numpy as np
import pytest
from cxrdata_testing import SAMPLE_REPORT as SAMPLE

from cxrdata.extract.rules import RuleExtractor
from cxrdata.targets.locate import locate_report, locate_reports
from cxrdata.targets.prompts import build_prompt, pathology_words
from cxrdata.text.sections import report_sections
from cxrdata.vocabulary import locations

EXTRACTOR = RuleExtractor()

# (findings text, pathology, expected prompt or drop reason)
TABLE = [
    # every location term
    ("Small left pleural effusion.", "Pleural Effusion", "left pleural effusion"),
    ("Small left apical pneumothorax.", "Pneumothorax", "left apical pneumothorax"),
    ("Left upper lobe consolidation.", "Consolidation", "left upper consolidation"),
    ("Patchy opacity in the left mid lung.", "Lung Opacity", "left middle lung opacity"),
    ("Left lower lobe atelectasis.", "Atelectasis", "left lower atelectasis"),
    (
        "Blunting of the left costophrenic angle from a small effusion.",
        "Pleural Effusion",
        "left costophrenic pleural effusion",
    ),
    ("Air in the left pleural space consistent with pneumothorax.", "Pneumothorax", "left pleural pneumothorax"),
    ("Atelectasis at the left base.", "Atelectasis", "left base atelectasis"),
    ("Large right pneumothorax.", "Pneumothorax", "right pneumothorax"),
    ("Right apical pneumothorax is unchanged.", "Pneumothorax", "right apical pneumothorax"),
    ("Right upper lobe pneumonia.", "Pneumonia", "right upper pneumonia"),
    ("Right middle lobe opacity is new.", "Lung Opacity", "right middle lung opacity"),
    ("Right lower lobe consolidation.", "Consolidation", "right lower consolidation"),
    ("Small effusion blunts the right costophrenic angle.", "Pleural Effusion", "right costophrenic pleural effusion"),
    ("Small pneumothorax in the right pleural space.", "Pneumothorax", "right pleural pneumothorax"),
    ("Atelectasis at the right lung base.", "Atelectasis", "right base atelectasis"),
    ("Bilateral pleural effusions.", "Pleural Effusion", "bilateral pleural effusion"),
    ("Biapical pneumothoraces.", "Pneumothorax", "bilateral apical pneumothorax"),
    ("Consolidation in both upper lobes.", "Consolidation", "bilateral upper consolidation"),
    ("Opacities in the left and right mid lungs.", "Lung Opacity", "bilateral middle lung opacity"),
    ("Bilateral lower lobe atelectasis.", "Atelectasis", "bilateral lower atelectasis"),
    ("Small effusions blunt both costophrenic angles.", "Pleural Effusion", "bilateral costophrenic pleural effusion"),
    ("Small pneumothoraces in both pleural spaces.", "Pneumothorax", "bilateral pleural pneumothorax"),
    ("Bibasilar atelectasis.", "Atelectasis", "bibasilar atelectasis"),
    ("Lingular consolidation.", "Consolidation", "lingular consolidation"),
    ("The cardiac silhouette is enlarged.", "Cardiomegaly", "cardiomegaly cardiomegaly"),
    ("Mild pulmonary edema.", "Edema", "pulmonary edema"),
    # merge rules, sentence level
    ("Left lower lobe and right lower lobe atelectasis.", "Atelectasis", "bilateral lower atelectasis"),
    ("Atelectasis at the left base and right base.", "Atelectasis", "bibasilar atelectasis"),
    ("Atelectasis in both lung bases.", "Atelectasis", "bibasilar atelectasis"),
    ("Opacity at the base of the left lung.", "Lung Opacity", "left base lung opacity"),
    ("Basilar atelectasis, left greater than right basilar.", "Atelectasis", "bibasilar atelectasis"),
    ("Bilateral lower lobe opacities, greater in the left lower lobe.", "Lung Opacity", "bilateral lower lung opacity"),
    ("Left-sided effusion layering at the left base.", "Pleural Effusion", "left base pleural effusion"),
    ("Bilateral edema.", "Edema", "pulmonary edema"),
    ("Edema in both lungs.", "Edema", "pulmonary edema"),
    # merge rules, report level
    (
        "Left lower lobe atelectasis.  Right lower lobe atelectasis is also present.",
        "Atelectasis",
        "bilateral lower atelectasis",
    ),
    ("Left base atelectasis.  Right basilar atelectasis.", "Atelectasis", "bibasilar atelectasis"),
    ("Small left effusion.  Small right effusion.", "Pleural Effusion", "bilateral pleural effusion"),
    # several locations, synonyms, regions
    ("Right upper lobe and left lower lobe pneumonia.", "Pneumonia", "left lower <and> right upper pneumonia"),
    ("Consolidation in the left upper lobe and lingula.", "Consolidation", "left upper <and> lingular consolidation"),
    ("Right lower lobe opacity.", "Pneumonia", "right lower pneumonia"),
    ("Left lower lobe pneumonia.", "Consolidation", "left lower consolidation"),
    ("Retrocardiac opacity.", "Lung Opacity", "left lower lung opacity"),
    ("Enlarged heart with bilateral effusions.", "Pleural Effusion", "bilateral pleural effusion"),
    ("Enlarged heart with bilateral effusions.", "Cardiomegaly", "cardiomegaly cardiomegaly"),
    ("Elevation of the right hemidiaphragm with right basilar atelectasis.", "Atelectasis", "right base atelectasis"),
    ("Right IJ catheter in place with left lower lobe atelectasis.", "Atelectasis", "left lower atelectasis"),
    ("Pneumothorax on the right.", "Pneumothorax", "right pneumothorax"),
    ("Opacity in the right mid-lung.", "Lung Opacity", "right middle lung opacity"),
    # several findings in one sentence: the anatomy attached to the pathology's mention
    ("Small bilateral pleural effusions with bibasilar atelectasis.", "Atelectasis", "bibasilar atelectasis"),
    ("Small bilateral pleural effusions with bibasilar atelectasis.", "Pleural Effusion", "bilateral pleural effusion"),
    ("Opacity in the right lower lobe and atelectasis at the left base.", "Pneumonia", "right lower pneumonia"),
    ("Moderate right and small left pleural effusions.", "Pleural Effusion", "bilateral pleural effusion"),
    ("Right PICC and left effusion.", "Pleural Effusion", "left pleural effusion"),
    # negation, resolution, uncertainty
    ("No pneumothorax.", "Pneumothorax", "negated"),
    ("Left lower lobe opacity without effusion.", "Pleural Effusion", "negated"),
    ("Negative for pneumonia.", "Pneumonia", "negated"),
    ("Lungs are free of consolidation.", "Consolidation", "negated"),
    ("Right lower lobe pneumonia has resolved.", "Pneumonia", "negated"),
    ("Left effusion has cleared.", "Pleural Effusion", "negated"),
    ("No evidence of pneumothorax.", "Pneumothorax", "negated"),
    ("No pneumothorax or pleural effusion.", "Pleural Effusion", "negated"),
    ("No focal consolidation, effusion, or pneumothorax.", "Pneumothorax", "negated"),
    ("No focal consolidation, effusion, or pneumothorax.", "Pleural Effusion", "negated"),
    ("No focal consolidation, effusion, or pneumothorax.", "Consolidation", "negated"),
    ("Resolved left lower lobe atelectasis.", "Atelectasis", "negated"),
    ("Interval resolution of the right pleural effusion.", "Pleural Effusion", "negated"),
    ("Pneumothorax is not seen.", "Pneumothorax", "negated"),
    ("The left pneumothorax is no longer seen.", "Pneumothorax", "negated"),
    ("Right lower lobe opacity, not pneumonia.", "Pneumonia", "negated"),
    ("Right lower lobe opacity may represent atelectasis.", "Atelectasis", "uncertain"),
    ("Pneumonia in the left lower lobe cannot be excluded.", "Pneumonia", "uncertain"),
    ("No change in small left pleural effusion.", "Pleural Effusion", "left pleural effusion"),
    ("Left effusion has not resolved.", "Pleural Effusion", "left pleural effusion"),
    ("No pneumothorax, but there is a small left pleural effusion.", "Pleural Effusion", "left pleural effusion"),
    ("No pneumothorax, but there is a small left pleural effusion.", "Pneumothorax", "negated"),
    ("Right lower lobe pneumonia, no left effusion.", "Pneumonia", "right lower pneumonia"),
    # drops
    ("Atelectasis is present.", "Atelectasis", "no_location"),
    ("The lungs are clear.", "Pneumonia", "no_sentence"),
]


@pytest.mark.parametrize(("text", "pathology", "expected"), TABLE)
def test_prompt_table(text: str, pathology: str, expected: str) -> None:
    result = locate_report({"findings": text}, pathology, EXTRACTOR)
    got = result.prompt if result.prompt is not None else result.drop_reason
    assert got == expected, [(s.sentence, s.entities, s.locations) for s in result.sentences]


def test_table_covers_every_location_term() -> None:
    used = set()
    for text, pathology, _expected in TABLE:
        result = locate_report({"findings": text}, pathology, EXTRACTOR)
        used |= set(result.locations)
    assert used == set(locations())


def test_include_uncertain_keeps_hedged_mentions() -> None:
    text = "Right lower lobe opacity may represent atelectasis."
    result = locate_report({"findings": text}, "Atelectasis", EXTRACTOR, include_uncertain=True)
    assert result.prompt == "right lower atelectasis"


@pytest.mark.parametrize(
    ("pathology", "expected"),
    [
        ("Pleural Effusion", "bilateral pleural effusion"),
        ("Pneumonia", "right lower pneumonia"),
        ("Lung Opacity", "right lower lung opacity"),
        ("Pneumothorax", "negated"),
        ("Cardiomegaly", "no_sentence"),
    ],
)
def test_public_sample_report(pathology: str, expected: str) -> None:
    result = locate_report(report_sections(SAMPLE), pathology, EXTRACTOR)
    assert (result.prompt or result.drop_reason) == expected


def test_sample_report_located_sentences() -> None:
    result = locate_report(report_sections(SAMPLE), "Pleural Effusion", EXTRACTOR)
    assert [(s.section, s.sentence, s.locations) for s in result.located] == [
        ("findings", "Large left pleural effusion is new.", ("left",)),
        ("findings", "Small right effusion is new.", ("right",)),
        ("impression", "Large left pleural effusion", ("left",)),
    ]
    assert {s.extractor for s in result.sentences} == {"rules"}


def test_batch_calls_extractor_once_with_unique_sentences() -> None:
    calls: list[list[str]] = []

    class Spy:
        name, version = "spy", "0"

        def extract(self, sentences):
            calls.append(list(sentences))
            return EXTRACTOR.extract(sentences)

    reports = [({"findings": "Left lower lobe atelectasis."}, "Atelectasis")] * 3
    reports.append(({"findings": "No pneumothorax."}, "Pneumothorax"))
    results = locate_reports(reports, Spy())
    assert calls == [["Left lower lobe atelectasis."]]
    assert [r.prompt or r.drop_reason for r in results] == ["left lower atelectasis"] * 3 + ["negated"]


def test_last_paragraph_used_when_no_findings_or_impression() -> None:
    result = locate_report({"last_paragraph": "Bibasilar atelectasis."}, "Atelectasis", EXTRACTOR)
    assert result.prompt == "bibasilar atelectasis"


def test_build_prompt_order_and_joining() -> None:
    assert build_prompt(["right upper", "left lower"], "Pneumonia") == "left lower <and> right upper pneumonia"
    assert build_prompt(["left lower", "left lower"], "Atelectasis") == "left lower atelectasis"
    assert (
        build_prompt(["right upper", "left lower"], "Pneumonia", repeat_pathology=True)
        == "left lower pneumonia <and> right upper pneumonia"
    )
    assert pathology_words("Lung Opacity") == "lung opacity"


@pytest.mark.parametrize(("locs", "pathology"), [([], "Edema"), (["left"], "Flu"), (["middle left"], "Edema")])
def test_build_prompt_rejects_bad_input(locs: list[str], pathology: str) -> None:
    with pytest.raises(ValueError):
        build_prompt(locs, pathology)


# Every location phrase of the sample report vocabulary (cxrdata/sample/report_phrases.yaml) and the
# location term it must give; "right perihilar" has no zone of its own, so it is the bare side.
SAMPLE_TERMS = {
    "left lower lobe": "left lower", "right lower lobe": "right lower", "right middle lobe": "right middle",
    "right mid lung": "right middle", "left mid lung": "left middle", "right upper lobe": "right upper",
    "left upper lobe": "left upper", "lingula": "lingular", "left base": "left base", "right base": "right base",
    "bibasilar": "bibasilar", "both bases": "bibasilar", "right perihilar": "right", "right apex": "right apical",
    "left apex": "left apical", "right": "right", "left": "left", "bilateral": "bilateral",
    "right costophrenic angle": "right costophrenic", "left costophrenic angle": "left costophrenic",
    "right pneumothorax": "right", "left pneumothorax": "left", "pulmonary": "pulmonary", "perihilar": "pulmonary",
    "heart": "cardiomegaly",
}


def sample_sentences(kinds: tuple[str, ...]):
    """(pathology, location, sentence) for every location and template of the sample vocabulary, a few
    term / size draws each."""
    from cxrdata.sample.reports import phrases, pick_finding

    for pathology, spec in phrases()["pathologies"].items():
        for location in spec["locations"]:
            for seed in range(4):
                finding = pick_finding(np.random.default_rng(seed), pathology, location)
                for kind in kinds:
                    for template in spec[kind]:
                        text = template.format(**finding.words)
                        yield pathology, location, text[:1].upper() + text[1:]


def test_every_positive_sample_sentence_gets_its_location() -> None:
    """The sample writes "effusions are present bilaterally", "basilar" sides, "cardiomegaly is present":
    each positive or impression sentence it can write gives exactly its location (its impression
    "Findings concerning for ..." is a hedge in every ConText rule set, so it stays uncertain)."""
    wrong = []
    for pathology, location, sentence in sample_sentences(("positive", "impression")):
        result = locate_report({"findings": sentence}, pathology, EXTRACTOR)
        expected = build_prompt([SAMPLE_TERMS[location]], pathology)
        if "concerning for" in sentence:
            expected = None
        if result.prompt != expected:
            wrong.append((sentence, pathology, result.prompt or result.drop_reason, expected))
    assert wrong == []


def test_every_hedged_or_resolved_sample_sentence_is_dropped() -> None:
    wrong = []
    for pathology, _location, sentence in sample_sentences(("uncertain", "resolved")):
        if "has improved" in sentence:  # the sample's "resolved" Cardiomegaly template: improved is not gone
            continue
        result = locate_report({"findings": sentence}, pathology, EXTRACTOR)
        if result.drop_reason not in ("uncertain", "negated"):
            wrong.append((sentence, pathology, result.prompt or result.drop_reason))
    assert wrong == []
