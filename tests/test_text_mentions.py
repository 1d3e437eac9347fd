"""Pathology mentions: names, plurals, synonyms and the positive-mention rule."""

from __future__ import annotations

import pytest

from cxrdata.text.mentions import (
    find_mentions,
    is_positive,
    mention_status,
    mentions_any_pathology,
    pathology_terms,
    usable_mentions,
)
from cxrdata.vocabulary import pathologies


def test_terms_cover_the_eight_pathologies() -> None:
    assert set(pathology_terms()) == set(pathologies())


@pytest.mark.parametrize(
    ("sentence", "pathology"),
    [
        ("Right lower lobe pneumonia.", "Pneumonia"),
        ("Right lower lobe opacity.", "Pneumonia"),  # synonym (seed 003: used interchangeably)
        ("Left lower lobe consolidation.", "Pneumonia"),
        ("Multifocal pneumonias.", "Pneumonia"),
        ("Bilateral opacities.", "Lung Opacity"),
        ("Left lower lobe consolidative process.", "Consolidation"),
        ("Left lower lobe pneumonia.", "Consolidation"),
        ("Bibasilar atelectases.", "Atelectasis"),
        ("Atelectatic changes at the bases.", "Atelectasis"),
        ("Small bilateral pleural effusions.", "Pleural Effusion"),
        ("Small left effusion.", "Pleural Effusion"),
        ("Bilateral pneumothoraces.", "Pneumothorax"),
        ("Mild cardiomegaly.", "Cardiomegaly"),
        ("The heart is enlarged.", "Cardiomegaly"),
        ("Heart size is mildly enlarged.", "Cardiomegaly"),
        ("Enlarged cardiac silhouette.", "Cardiomegaly"),
        ("Mild pulmonary edema.", "Edema"),
        ("Mild pulmonary vascular congestion.", "Edema"),
    ],
)
def test_positive_mentions(sentence: str, pathology: str) -> None:
    assert is_positive(sentence, pathology)


@pytest.mark.parametrize(
    ("sentence", "pathology"),
    [
        ("Small pericardial effusion.", "Pleural Effusion"),
        ("Heart size is normal.", "Cardiomegaly"),
        ("The lungs are clear.", "Pneumonia"),
        ("No pneumothorax.", "Pneumothorax"),
        ("Right lower lobe opacity, not pneumonia.", "Pneumonia"),  # own name negated: synonyms vetoed
        ("Right lower lobe opacity may represent pneumonia.", "Pneumonia"),
        ("Pneumonia cannot be excluded.", "Pneumonia"),
        ("Effusion has resolved.", "Pleural Effusion"),
        ("The heart is not enlarged.", "Cardiomegaly"),  # the mention's own "not"
        ("The heart does not appear enlarged.", "Cardiomegaly"),
        ("Cardiac silhouette is no longer enlarged.", "Cardiomegaly"),
    ],
)
def test_not_positive(sentence: str, pathology: str) -> None:
    assert not is_positive(sentence, pathology)


def test_uncertain_is_an_option() -> None:
    sentence = "Right lower lobe opacity may represent pneumonia."
    assert mention_status(find_mentions(sentence, "Atelectasis")) == "absent"
    mentions = find_mentions(sentence, "Pneumonia")
    assert [(m.text, m.synonym, m.certainty) for m in mentions] == [
        ("opacity", True, "positive"),
        ("pneumonia", False, "uncertain"),
    ]
    assert mention_status(mentions) == "uncertain"
    assert mention_status(mentions, include_uncertain=True) == "positive"
    assert is_positive(sentence, "Pneumonia", include_uncertain=True)


def test_own_name_positive_elsewhere_still_counts() -> None:
    assert is_positive("Right lower lobe pneumonia, no left pneumonia.", "Pneumonia")


def test_mention_spans() -> None:
    sentence = "Large left pleural effusion."
    (mention,) = find_mentions(sentence, "Pleural Effusion")
    assert sentence[mention.start : mention.end] == "pleural effusion" == mention.text


def test_mentions_any_pathology() -> None:
    assert mentions_any_pathology("small effusion")
    assert not mentions_any_pathology("PICC line tip")


def test_usable_mentions_are_the_ones_that_locate() -> None:
    sentence = "There is a small left effusion and a possible small right effusion."
    mentions = find_mentions(sentence, "Pleural Effusion")
    assert [(m.text, m.certainty) for m in usable_mentions(mentions)] == [("effusion", "positive")]
    assert len(usable_mentions(mentions, include_uncertain=True)) == 2
    sentence = "Right lower lobe opacity, not pneumonia."
    assert usable_mentions(find_mentions(sentence, "Pneumonia")) == []  # own name negated: synonyms vetoed
