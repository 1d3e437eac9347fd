"""Sentence splitting and RadGraph-style tokenisation."""

from __future__ import annotations

import pytest

from cxrdata.text.sentences import split_sentences
from cxrdata.text.tokens import token_index, tokenize


def test_keeps_decimals_initials_and_abbreviations() -> None:
    text = "There is a 4.5 cm mass in the L. upper lobe. Dr. ___ was notified at 10:30 a.m. on ___. No effusion."
    assert split_sentences(text) == [
        "There is a 4.5 cm mass in the L. upper lobe.",
        "Dr. ___ was notified at 10:30 a.m. on ___.",
        "No effusion.",
    ]


def test_mimic_line_wraps_and_paragraphs() -> None:
    raw = (
        "\n \n Cardiac size cannot be evaluated.  Large left pleural effusion is new.  Small\n"
        " right effusion is new.\n \n Mild degenerative changes\n \n No pneumothorax\n"
    )
    assert split_sentences(raw) == [
        "Cardiac size cannot be evaluated.",
        "Large left pleural effusion is new.",
        "Small right effusion is new.",
        "Mild degenerative changes",
        "No pneumothorax",
    ]


def test_numbered_lists_are_split_and_unnumbered() -> None:
    raw = " 1.  Left lower lobe opacity.\n 2.  No pneumothorax.\n 3) Small left effusion."
    assert split_sentences(raw) == ["Left lower lobe opacity.", "No pneumothorax.", "Small left effusion."]


@pytest.mark.parametrize("text", [None, "", "  \n \n ", "___."])
def test_empty_input(text: str | None) -> None:
    assert split_sentences(text) == []


def test_tokenize_like_radgraph_xl() -> None:
    text = "Left 4.5 cm (see above). 10%, right-sided ___"
    assert [t.text for t in tokenize(text)] == [
        "Left", "4", ".", "5", "cm", "(", "see", "above", ")", ".", "10", "%", ",", "right", "-", "sided", "___",
    ]  # fmt: skip
    for token in tokenize(text):
        assert text[token.start : token.end] == token.text


def test_token_index() -> None:
    tokens = tokenize("No left effusion.")
    assert token_index(tokens, 3) == 1
    assert token_index(tokens, 100) == len(tokens)


def _pysbd_split(text: str) -> list[str]:
    """The splitting cxrdata did before issue 16 (pysbd 0.3.4, paragraph by paragraph)."""
    pysbd = pytest.importorskip("pysbd")
    from cxrdata.text.sections import normalize_whitespace
    from cxrdata.text.sentences import _ENUMERATOR

    segmenter = pysbd.Segmenter(language="en", clean=False)
    return [s for p in normalize_whitespace(text).split("\n") for s in
            (_ENUMERATOR.sub("", x.strip()) for x in segmenter.segment(p)) if s and any(c.isalnum() for c in s)]


def test_same_sentences_as_pysbd_on_the_language_corpus() -> None:
    from language_corpus import load_cases

    texts = sorted({t for case in load_cases() for t in case.sections.values()})
    assert len(texts) > 500
    differ = [t for t in texts if split_sentences(t) != _pysbd_split(t)]
    assert differ == []


def test_the_one_deliberate_difference_from_pysbd_a_list_number_is_not_a_sentence() -> None:
    # Open-i (Indiana) impressions write "1.Finding. 2. Finding": pysbd gives "2." a sentence of its own.
    text = "1.Severe arthritic changes in both hips. 2. Possible COPD but no acute pulmonary disease."
    assert _pysbd_split(text) == ["1.Severe arthritic changes in both hips.", "2.",
                                  "Possible COPD but no acute pulmonary disease."]
    assert split_sentences(text) == ["1.Severe arthritic changes in both hips.",
                                     "Possible COPD but no acute pulmonary disease."]
