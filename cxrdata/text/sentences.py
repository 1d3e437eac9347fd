"""Sentence splitting for report sections (pysbd, rule-based, offline).

pysbd keeps decimals ("4.5 cm"), initials ("L.") and abbreviations ("Dr.") intact. Raw MIMIC text is
whitespace-normalised first (line wraps joined, blank lines kept as paragraph breaks) and paragraphs
are never merged into one sentence. List numbering ("1.", "2)") is stripped from sentence starts.
"""

from __future__ import annotations

import re
from functools import cache

import pysbd

from cxrdata.text.sections import normalize_whitespace

_ENUMERATOR = re.compile(r"^\(?\d{1,2}[.)]\s+(?=\S)")


@cache
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


def split_sentences(text: str | None) -> list[str]:
    """Sentences of a section's text, stripped, empty ones dropped, in order."""
    if not text:
        return []
    sentences: list[str] = []
    for paragraph in normalize_whitespace(text).split("\n"):
        for sentence in _segmenter().segment(paragraph):
            sentence = _ENUMERATOR.sub("", sentence.strip())
            if sentence and any(char.isalnum() for char in sentence):
                sentences.append(sentence)
    return sentences
