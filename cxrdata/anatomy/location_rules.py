"""The location mapper's word lists (``location_rules.yaml``) and the order of the 27 location terms.

Everything the mapper (:mod:`cxrdata.anatomy.locations`) and the rule-based extractor know about words
is read here, once: sides, zones, regions, connectors, view and comparison words, phrases, merge rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache, lru_cache
from importlib import resources

from cxrdata.text.tokens import tokenize
from cxrdata.vocabulary import location_term, locations, sides_and_zones
from cxrdata.yamlfiles import load_yaml


@cache
def rules() -> dict:
    """The parsed ``location_rules.yaml``; a word list holding a non-word (YAML reads a bare ``on`` as
    true) is a ValueError, not a silently missing word."""
    data = load_yaml(resources.files("cxrdata.anatomy").joinpath("location_rules.yaml").read_text())
    for key, value in data.items():
        bad = [w for w in value if not isinstance(w, str)] if isinstance(value, list) else []
        if bad:
            raise ValueError(f"location_rules.yaml {key}: {bad!r} are not words (quote them)")
    return data


@cache
def term_parts() -> dict[str, tuple[str, str]]:
    """Location term -> (side, zone) for the 24 side x zone terms."""
    sides, zones = sides_and_zones()
    return {location_term(s, z): (s, z) for s in sides for z in zones}


@cache
def side_zone_terms() -> dict[tuple[str, str], str]:
    """(side, zone) -> location term, the inverse of :func:`term_parts`."""
    return {parts: term for term, parts in term_parts().items()}


@cache
def _order() -> dict[str, int]:
    return {term: i for i, term in enumerate(locations())}


@cache
def _known() -> frozenset[str]:
    return frozenset(locations())


@cache
def closers() -> frozenset[str]:
    """Words that close a unit of anatomy words (heads, regions, blockers, side zones, nouns)."""
    r = rules()
    return frozenset([*r["heads"], *r["regions"], *r["blockers"], *r["side_zones"], *r["nouns"]])


@cache
def word_set(key: str) -> frozenset[str]:
    """A word list of the rules, lower-cased."""
    return frozenset(str(w).lower() for w in rules()[key])


@cache
def anatomy_words() -> frozenset[str]:
    """Every single-token anatomy word the rules know (the rule-based extractor's lexicon)."""
    r = rules()
    return frozenset([*r["sides"], *r["side_zones"], *r["zones"], *r["regions"], *r["heads"], *r["blockers"],
                      *r["modifiers"]])


@cache
def phrases() -> tuple[tuple[tuple[str, ...], str], ...]:
    """(tokens of a phrase, the one word it reads as): "posterior to the heart" -> "retrocardiac"."""
    return tuple((tuple(t.text.lower() for t in tokenize(p)), word) for p, word in rules()["phrases"].items())


def order_locations(terms: Iterable[str]) -> tuple[str, ...]:
    """Distinct terms in vocabulary order (the deterministic order of prompts and tables)."""
    return _ordered(frozenset(terms))


@lru_cache(maxsize=4096)
def _ordered(terms: frozenset[str]) -> tuple[str, ...]:  # few distinct sets recur in every report
    unknown = terms - _known()
    if unknown:
        raise ValueError(f"not location terms: {sorted(unknown)}")
    return tuple(sorted(terms, key=_order().__getitem__))
