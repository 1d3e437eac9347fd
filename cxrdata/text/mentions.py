"""Pathology mentions in a sentence and whether they are positive.

Terms come from ``pathologies.yaml`` (names, plurals, synonyms); certainty comes from the ConText rules
(:mod:`cxrdata.text.context`). A sentence counts for a pathology when one of its mentions is positive.
Uncertain mentions ("may represent pneumonia", "cannot be excluded") do not count unless
``include_uncertain=True``: the curated set keeps definite findings only, like the paper's skip list.
When one of the pathology's own names is negated or uncertain in a sentence, its synonyms there do not
count either ("right lower lobe opacity, no pneumonia" is not a Pneumonia sentence).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from cxrdata.text.context import NEGATED, POSITIVE, UNCERTAIN, Certainty, ConText, Trigger, default_context
from cxrdata.vocabulary import pathologies
from cxrdata.yamlfiles import load_yaml

ABSENT = "absent"


@dataclass(frozen=True)
class Mention:
    """One mention of a pathology: the matched words, character span, synonym flag and certainty."""

    pathology: str
    text: str
    start: int
    end: int
    synonym: bool
    certainty: Certainty


@cache
def pathology_terms() -> dict[str, dict]:
    """The parsed ``pathologies.yaml``, checked against the 8 pathologies of the vocabulary."""
    data = load_yaml(resources.files("cxrdata.text").joinpath("pathologies.yaml").read_text())
    if set(data) != set(pathologies()):
        raise ValueError(f"pathologies.yaml covers {sorted(data)}, expected {sorted(pathologies())}")
    return data


def _alternation(phrases: list[str]) -> str:
    bodies = sorted((p.replace(" ?", r"\s*").replace(" ", r"\s+") for p in phrases), key=len, reverse=True)
    return "|".join(bodies)


@cache
def _regex(pathology: str) -> re.Pattern[str]:
    terms = pathology_terms()[pathology]
    names, synonyms = _alternation(terms["names"]), _alternation(terms.get("synonyms", []))
    body = f"(?P<name>{names})" + (f"|(?P<synonym>{synonyms})" if synonyms else "")
    return re.compile(rf"(?<![\w-])(?:{body})(?![\w-])", re.IGNORECASE)


@cache
def _exclude_regex(pathology: str) -> re.Pattern[str] | None:
    phrases = pathology_terms()[pathology].get("exclude", [])
    return re.compile(rf"(?<![\w-])(?:{_alternation(phrases)})(?![\w-])", re.IGNORECASE) if phrases else None


@cache
def _any_regex() -> re.Pattern[str]:
    phrases = [p for terms in pathology_terms().values() for p in (*terms["names"], *terms.get("synonyms", []))]
    return re.compile(rf"(?<![\w-])(?:{_alternation(sorted(set(phrases)))})(?![\w-])", re.IGNORECASE)


def finding_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of every term of the 8 pathologies in ``text`` (certainty ignored)."""
    return [m.span() for m in _any_regex().finditer(text)]


def mentions_any_pathology(text: str) -> bool:
    """Whether ``text`` mentions any of the 8 pathologies or their synonyms (certainty ignored)."""
    return _any_regex().search(text) is not None


def mentions_pathology(text: str, pathology: str) -> bool:
    """Whether ``text`` contains a term of ``pathology`` at all (a cheap pre-filter; certainty ignored)."""
    return _regex(pathology).search(text) is not None


def find_mentions(
    sentence: str,
    pathology: str,
    context: ConText | None = None,
    triggers: Sequence[Trigger] | None = None,
) -> list[Mention]:
    """All mentions of ``pathology`` in ``sentence`` with their certainty."""
    matches = list(_regex(pathology).finditer(sentence))
    exclude = _exclude_regex(pathology)
    if matches and exclude is not None:
        spans = [m.span() for m in exclude.finditer(sentence)]
        matches = [m for m in matches if not any(s < m.end() and m.start() < e for s, e in spans)]
    if not matches:
        return []
    context = context or default_context()
    if triggers is None:
        triggers = context.triggers(sentence)
    return [
        Mention(
            pathology,
            m.group(),
            m.start(),
            m.end(),
            m.lastgroup == "synonym",
            context.certainty(sentence, m.start(), m.end(), triggers),
        )
        for m in matches
    ]


def usable_mentions(mentions: list[Mention], *, include_uncertain: bool = False) -> list[Mention]:
    """The mentions that make a sentence count: positive ones (and uncertain ones with
    ``include_uncertain``); when one of the pathology's own names is not accepted, only its names count.
    They are also the mentions whose anatomy locates the pathology ("small left effusion and a possible
    right effusion" is located on the left)."""
    accepted = {POSITIVE, UNCERTAIN} if include_uncertain else {POSITIVE}
    names = [m for m in mentions if not m.synonym]
    if any(m.certainty not in accepted for m in names):
        return [m for m in names if m.certainty in accepted]
    return [m for m in mentions if m.certainty in accepted]


def mention_status(mentions: list[Mention], *, include_uncertain: bool = False) -> str:
    """``positive``, ``negated``, ``uncertain`` or ``absent`` for a sentence's mentions of one pathology."""
    if not mentions:
        return ABSENT
    if usable_mentions(mentions, include_uncertain=include_uncertain):
        return POSITIVE
    return NEGATED if any(m.certainty == NEGATED for m in mentions) else UNCERTAIN


def is_positive(sentence: str, pathology: str, *, include_uncertain: bool = False) -> bool:
    """Whether ``sentence`` positively mentions ``pathology`` (see the module docstring)."""
    status = mention_status(find_mentions(sentence, pathology), include_uncertain=include_uncertain)
    return status == POSITIVE
