"""Anatomy entities -> the 27 location terms, and the bilateral merge (seed 003, appendix A).

All word lists live in ``location_rules.yaml``. Entities are grouped when they are adjacent or joined
by connector words; in a sentence naming several findings, only the groups attached to the pathology's
mention are used ("small bilateral effusions with bibasilar atelectasis"). Each group is read into
units ("left lower lobe and right base" -> two units), and a unit gives side x zone terms ("left lower"),
whole-region terms ("lingular") or a bare side ("right"). Terms are then filtered per pathology and
merged: left X + right X -> bilateral X (bilateral base is written "bibasilar"), bilateral X absorbs
left/right X, and a bare side next to a more specific term of the same side is dropped. The same merge
runs on a sentence's terms and on the union over a report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import yaml

from cxrdata.anatomy.vocabulary import location_term, locations
from cxrdata.extract.base import ANAT_DP, Entity
from cxrdata.text.tokens import Token, tokenize


@cache
def rules() -> dict:
    """The parsed ``location_rules.yaml``."""
    return yaml.safe_load(resources.files("cxrdata.anatomy").joinpath("location_rules.yaml").read_text())


@cache
def _term_parts() -> dict[str, tuple[str, str]]:
    """Location term -> (side, zone) for the 24 side x zone terms."""
    vocab = yaml.safe_load(resources.files("cxrdata.anatomy").joinpath("vocabulary.yaml").read_text())
    return {location_term(s, z): (s, z) for s in vocab["sides"] for z in vocab["zones"]}


@cache
def _order() -> dict[str, int]:
    return {term: i for i, term in enumerate(locations())}


@cache
def _closers() -> frozenset[str]:
    r = rules()
    return frozenset([*r["heads"], *r["regions"], *r["blockers"], *r["side_zones"], *r["nouns"]])


@cache
def anatomy_words() -> frozenset[str]:
    """Every single-token anatomy word the rules know (the rule-based extractor's lexicon)."""
    r = rules()
    return frozenset([*r["sides"], *r["side_zones"], *r["zones"], *r["regions"], *r["heads"], *r["blockers"]])


def order_locations(terms: Iterable[str]) -> tuple[str, ...]:
    """Distinct terms in vocabulary order (the deterministic order of prompts and tables)."""
    order, terms = _order(), set(terms)
    unknown = terms - set(order)
    if unknown:
        raise ValueError(f"not location terms: {sorted(unknown)}")
    return tuple(sorted(terms, key=order.__getitem__))


@dataclass
class _Unit:
    sides: list[str] = field(default_factory=list)
    zones: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    plural: bool = False
    blocked: bool = False
    closed: bool = False
    has_region: bool = False

    def emit(self) -> list[str]:
        if self.blocked:
            return []
        sides = list(dict.fromkeys(self.sides)) or (["bilateral"] if self.plural else [])
        out = list(self.terms)
        if self.zones:
            out += [location_term(s, z) for s in sides for z in dict.fromkeys(self.zones)]
        elif not self.has_region and not self.terms:
            out += sides
        return out


def phrase_locations(words: Sequence[str]) -> list[str]:
    """Location terms named by one group of anatomy words, before pathology filtering and merging.

    >>> phrase_locations(["left", "and", "right", "lower", "lobes"])
    ['left lower', 'right lower']
    """
    r = rules()
    units, unit, split_pending, after_of = [], _Unit(), False, False
    for raw in words:
        word = raw.lower()
        if word in r["connectors"]:
            split_pending = split_pending or word != "of"
            after_of = after_of or word == "of"
            continue
        starts_unit = word in r["sides"] or word in r["side_zones"] or word in r["regions"]
        starts_unit = starts_unit or word in r["blockers"] or word in r["nouns"]
        if unit.closed and split_pending and starts_unit and not after_of:
            units.append(unit)
            unit = _Unit()
        split_pending = after_of = False
        if word in r["sides"]:
            unit.sides.append(r["sides"][word])
        elif word in r["side_zones"]:
            side, zone = r["side_zones"][word]
            unit.terms.append(location_term(side, zone))
        elif word in r["zones"]:
            unit.zones.append(r["zones"][word])
        elif word in r["regions"]:
            unit.terms.append(r["regions"][word])
            unit.has_region = True
        elif word in r["blockers"]:
            unit.blocked = True
        unit.plural = unit.plural or word in r["plural"]
        unit.closed = unit.closed or word in _closers()
    units.append(unit)
    return [term for u in units for term in u.emit()]


@dataclass(frozen=True)
class Group:
    """Adjacent anatomy words read together; ``start``/``end`` are inclusive token indices (-1 if unknown)."""

    words: tuple[str, ...]
    start: int = -1
    end: int = -1


def entity_groups(
    sentence: str,
    entities: Sequence[Entity],
    exclude: Sequence[tuple[int, int]] = (),
    exclude_words: Iterable[str] = (),
) -> list[Group]:
    """The ANAT-DP entities, grouped when adjacent or joined by connector words.

    Entity spans index :func:`cxrdata.text.tokens.tokenize` tokens (RadGraph-XL's tokenisation). Tokens
    inside an ``exclude`` character span whose word is in ``exclude_words`` are left out ("pleural" of
    "pleural effusion"). An entity whose span does not fit the sentence's tokens is a group of its own.
    """
    tokens = tokenize(sentence)
    connectors, dropped = set(rules()["connectors"]), {w.lower() for w in exclude_words}

    def keep(token: Token) -> bool:
        inside = any(s <= token.start and token.end <= e for s, e in exclude)
        return not (inside and token.text.lower() in dropped)

    groups: list[Group] = []
    for entity in sorted((e for e in entities if e.label == ANAT_DP), key=lambda e: (e.start, e.end)):
        span = tokens[entity.start : entity.end + 1] if entity.start >= 0 else []
        if not span or " ".join(t.text for t in span) != " ".join(entity.text.split()):
            groups.append(Group(tuple(t.text for t in tokenize(entity.text))))
            continue
        words = tuple(t.text for t in span if keep(t))
        last = groups[-1] if groups else None
        gap = tokens[last.end + 1 : entity.start] if last is not None and last.end >= 0 else None
        if last is not None and gap is not None and all(t.text.lower() in connectors for t in gap):
            groups[-1] = Group(last.words + tuple(t.text for t in gap) + words, last.start, entity.end)
        else:
            groups.append(Group(words, entity.start, entity.end))
    return [g for g in groups if g.words]


def attached_groups(
    sentence: str,
    groups: Sequence[Group],
    findings: Sequence[tuple[int, int]],
    targets: Sequence[tuple[int, int]],
) -> list[Group]:
    """The groups that describe a target finding, when a sentence names several findings.

    Each group is attached to one finding (character spans of any pathology term): the one it overlaps;
    else, after a preposition ("opacity in the right lower lobe"), the nearest finding before it; else a
    finding at most ``attach_window`` tokens after it ("left lower lobe patchy opacity"); else the nearest
    one. Groups attached to a ``targets`` span are kept; if none is, all groups are (the sentence-level
    reading of seed 003), as are groups without token positions.
    """
    tokens = tokenize(sentence)
    spans = sorted({_token_span(tokens, s, e) for s, e in findings})
    wanted = {_token_span(tokens, s, e) for s, e in targets}
    window, prepositions = rules()["attach_window"], set(rules()["prepositions"])
    kept = []
    for group in groups:
        if group.start < 0:
            kept.append(group)
            continue
        overlap = [f for f in spans if f[0] <= group.end and group.start <= f[1]]
        before = [f for f in spans if f[1] < group.start]
        after = [f for f in spans if f[0] > group.end]
        previous = [t.text.lower() for t in tokens[max(0, group.start - 2) : group.start]]
        after_preposition = bool(previous) and (previous[-1] in prepositions or previous[0] in prepositions)
        if overlap:
            chosen = overlap[0]
        elif before and after_preposition:
            chosen = before[-1]
        elif after and after[0][0] - group.end - 1 <= window:
            chosen = after[0]
        elif before or after:
            chosen = min([*before, *after], key=lambda f: min(abs(f[0] - group.end), abs(group.start - f[1])))
        else:
            continue
        if chosen in wanted:
            kept.append(group)
    return kept or list(groups)


def _token_span(tokens: list[Token], start: int, end: int) -> tuple[int, int]:
    inside = [i for i, t in enumerate(tokens) if t.start < end and start < t.end]
    return (inside[0], inside[-1]) if inside else (-1, -1)


def filter_for_pathology(terms: Iterable[str], pathology: str) -> list[str]:
    """Apply the pathology's allow / exclude / rename rules."""
    table = rules()["pathology_rules"]
    rule = table.get(pathology, table["default"])
    out = []
    for term in terms:
        if "allow" in rule and term not in rule["allow"]:
            continue
        if term in rule.get("exclude", ()):
            continue
        out.append(term)
    return out


def merge_bilateral(terms: Iterable[str]) -> tuple[str, ...]:
    """Merge left/right pairs into bilateral terms and drop redundant ones; vocabulary order."""
    merge, parts = rules()["merge"], _term_parts()
    found = set(terms)
    by_zone: dict[str, set[str]] = {}
    for term in found:
        if term in parts:
            side, zone = parts[term]
            by_zone.setdefault(zone, set()).add(side)
    result = {term for term in found if term not in parts}
    for zone, sides in by_zone.items():
        if merge["sides_to_bilateral"] and {"left", "right"} <= sides:
            sides = (sides - {"left", "right"}) | {"bilateral"}
        if merge["bilateral_absorbs_sides"] and "bilateral" in sides:
            sides = {"bilateral"}
        result |= {location_term(side, zone) for side in sides}
    if merge["drop_bare_side"]:
        specific = {parts[t][0] for t in result if t in parts and parts[t][1]}
        result = {t for t in result if not (t in parts and not parts[t][1] and _covered(t, specific))}
    return order_locations(result)


def _covered(side: str, specific_sides: set[str]) -> bool:
    return side in specific_sides or "bilateral" in specific_sides


def finalize(terms: Iterable[str], pathology: str) -> tuple[str, ...]:
    """Pathology filter, bilateral merge, then the pathology's renames (merge first: left + right edema
    becomes bilateral, then pulmonary)."""
    merged = merge_bilateral(filter_for_pathology(terms, pathology))
    table = rules()["pathology_rules"]
    rename = table.get(pathology, table["default"]).get("rename", {})
    return order_locations(rename.get(term, term) for term in merged)


def sentence_locations(
    sentence: str,
    entities: Sequence[Entity],
    pathology: str,
    mentions: Sequence[tuple[int, int]] = (),
    exclude_words: Iterable[str] = (),
    findings: Sequence[tuple[int, int]] | None = None,
) -> tuple[str, ...]:
    """The merged location terms of one sentence for one pathology.

    ``mentions`` are the character spans of the pathology's mentions (their ``exclude_words`` are not
    locations); with ``findings`` (spans of every pathology term in the sentence) only the anatomy
    attached to a mention is used (:func:`attached_groups`), otherwise all of the sentence's anatomy.
    """
    groups = entity_groups(sentence, entities, mentions, exclude_words)
    if findings is not None:
        groups = attached_groups(sentence, groups, findings, mentions)
    return finalize((t for g in groups for t in phrase_locations(g.words)), pathology)


def report_locations(per_sentence: Iterable[Iterable[str]], pathology: str) -> tuple[str, ...]:
    """Report-level merge over the sentences' terms ("left lower" + "right lower" -> "bilateral lower")."""
    return finalize((t for terms in per_sentence for t in terms), pathology)
