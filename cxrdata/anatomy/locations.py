"""Anatomy entities -> the 27 location terms, and the bilateral merge (seed 003, appendix A).

This is the location mapper of both extractors (rule-based and RadGraph-XL); all word lists live in
``location_rules.yaml``. For one sentence and one pathology:

1. groups: ANAT-DP entities are grouped when adjacent or joined by connector words; phrases such as
   "posterior to the heart" are read as one word ("retrocardiac");
2. anatomy that does not locate a finding is dropped: a side word of a view or patient position ("left
   lateral decubitus film"), the reference of a comparison ("compared to the left"), anatomy said to be
   normal ("the lungs are otherwise clear") and anatomy in a negated ConText scope;
3. attachment: each group belongs to one finding, one of the 8 pathologies or another finding or device
   ("left apical pleural thickening"); the groups of the pathology's mention are used, or, when it has
   none, those of a finding linked to it ("opacity ... may represent atelectasis");
4. a side said apart from its zone ("basilar atelectasis on the left") is given to that zone;
5. each group is read into units ("left lower lobe and right base" -> two units; "right upper and left
   lower lobes" -> two units) and a unit gives side x zone terms ("left lower"), whole-region terms
   ("lingular") or a bare side ("right"); an unsided "basilar" means both bases; a bare plural organ word
   ("the lungs") means both sides only when nothing more specific is named;
6. terms are filtered per pathology and merged: left X + right X -> bilateral X (bilateral base is
   written "bibasilar"), bilateral X absorbs left/right X, a bare side next to a more specific term of
   that side is dropped; a positive Cardiomegaly mention without anatomy is located at "cardiomegaly".

The same merge runs on a sentence's terms and on the union over a report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import yaml

from cxrdata.text.context import NEGATED, Trigger, default_context
from cxrdata.text.entities import ANAT_DP, Entity
from cxrdata.text.tokens import Token, tokenize
from cxrdata.vocabulary import location_term, locations, sides_and_zones


@cache
def rules() -> dict:
    """The parsed ``location_rules.yaml``; a word list holding a non-word (YAML reads a bare ``on`` as
    true) is a ValueError, not a silently missing word."""
    data = yaml.safe_load(resources.files("cxrdata.anatomy").joinpath("location_rules.yaml").read_text())
    for key, value in data.items():
        bad = [w for w in value if not isinstance(w, str)] if isinstance(value, list) else []
        if bad:
            raise ValueError(f"location_rules.yaml {key}: {bad!r} are not words (quote them)")
    return data


@cache
def _term_parts() -> dict[str, tuple[str, str]]:
    """Location term -> (side, zone) for the 24 side x zone terms."""
    sides, zones = sides_and_zones()
    return {location_term(s, z): (s, z) for s in sides for z in zones}


@cache
def _order() -> dict[str, int]:
    return {term: i for i, term in enumerate(locations())}


@cache
def _closers() -> frozenset[str]:
    r = rules()
    return frozenset([*r["heads"], *r["regions"], *r["blockers"], *r["side_zones"], *r["nouns"]])


@cache
def _words(key: str) -> frozenset[str]:
    return frozenset(str(w).lower() for w in rules()[key])


@cache
def anatomy_words() -> frozenset[str]:
    """Every single-token anatomy word the rules know (the rule-based extractor's lexicon)."""
    r = rules()
    return frozenset([*r["sides"], *r["side_zones"], *r["zones"], *r["regions"], *r["heads"], *r["blockers"],
                      *r["modifiers"]])


@cache
def _phrases() -> tuple[tuple[tuple[str, ...], str], ...]:
    return tuple((tuple(t.text.lower() for t in tokenize(p)), word) for p, word in rules()["phrases"].items())


def order_locations(terms: Iterable[str]) -> tuple[str, ...]:
    """Distinct terms in vocabulary order (the deterministic order of prompts and tables)."""
    order, terms = _order(), set(terms)
    unknown = terms.difference(order)
    if unknown:
        raise ValueError(f"not location terms: {sorted(unknown)}")
    return tuple(sorted(terms, key=order.__getitem__))


# -- reading a group of anatomy words -----------------------------------------------------------------


@dataclass
class _Unit:
    sides: list[str] = field(default_factory=list)
    zones: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    plural: bool = False
    both_bases: bool = False  # an unsided "basilar" / "basal"
    blocked: bool = False
    closed: bool = False
    has_region: bool = False

    @property
    def weak(self) -> bool:
        """A bare plural organ word ("lungs", "lung fields"): both sides, unless something is more specific."""
        return self.plural and not (self.sides or self.zones or self.terms or self.blocked or self.has_region)

    @property
    def side_only(self) -> bool:
        """Only a side ("left", "on the right side", "in the left lung")."""
        return bool(self.sides) and not (self.zones or self.terms or self.blocked or self.has_region)

    @property
    def unsided_zone(self) -> bool:
        return bool(self.zones) and not (self.sides or self.blocked or self.terms)

    def emit(self) -> list[str]:
        if self.blocked:
            return []
        implied = ["bilateral"] if self.plural or self.both_bases else []
        sides = list(dict.fromkeys(self.sides)) or implied
        out = list(self.terms)
        if self.zones:
            out += [location_term(s, z) for s in sides for z in dict.fromkeys(self.zones)]
        elif not self.has_region and not self.terms:
            out += sides
        return out


def _units(words: Sequence[str]) -> list[_Unit]:
    r = rules()
    modifiers = _words("modifiers")
    units, unit, split_pending, after_of = [], _Unit(), False, False
    for raw in words:
        word = raw.lower()
        if word in r["connectors"]:
            split_pending = split_pending or word != "of"
            after_of = after_of or word == "of"
            continue
        if word in modifiers:  # transparent: neither a unit's content nor a break between units
            continue
        is_side = word in r["sides"] or word in r["side_zones"]
        starts_unit = is_side or word in r["regions"] or word in r["blockers"] or word in r["nouns"]
        complete = bool(unit.sides and (unit.zones or unit.terms))  # "right upper" + "and left lower"
        if split_pending and starts_unit and not after_of and (unit.closed or (is_side and complete)):
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
            unit.both_bases = unit.both_bases or word in _words("bilateral_when_unsided")
        elif word in r["regions"]:
            unit.terms.append(r["regions"][word])
            unit.has_region = True
        elif word in r["blockers"]:
            unit.blocked = True
        unit.plural = unit.plural or word in r["plural"]
        unit.closed = unit.closed or word in _closers()
    units.append(unit)
    return units


def phrase_locations(words: Sequence[str]) -> list[str]:
    """Location terms named by one group of anatomy words, before pathology filtering and merging.

    >>> phrase_locations(["left", "and", "right", "lower", "lobes"])
    ['left lower', 'right lower']
    >>> phrase_locations(["right", "upper", "and", "left", "lower", "lobes"])
    ['right upper', 'left lower']
    """
    return [term for u in _units(words) for term in u.emit()]


# -- grouping entities --------------------------------------------------------------------------------


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
    """The ANAT-DP entities, grouped when adjacent or joined by connector (or position modifier) words.

    Entity spans index :func:`cxrdata.text.tokens.tokenize` tokens (RadGraph-XL's tokenisation). Tokens
    inside an ``exclude`` character span whose word is in ``exclude_words`` are left out ("pleural" of
    "pleural effusion"). An entity whose span does not fit the sentence's tokens is a group of its own.
    Groups overlapping a phrase of ``location_rules.yaml`` ("behind the heart") become that phrase's word.
    """
    tokens = tokenize(sentence)
    joiners = set(rules()["connectors"]) | _words("modifiers")
    dropped = {w.lower() for w in exclude_words}

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
        if last is not None and gap is not None and _joins([t.text.lower() for t in gap], joiners):
            groups[-1] = Group(last.words + tuple(t.text for t in gap) + words, last.start, entity.end)
        else:
            groups.append(Group(words, entity.start, entity.end))
    return _read_phrases(tokens, [g for g in groups if g.words])


def _joins(gap: list[str], joiners: set[str]) -> bool:
    """Whether a gap of connector words joins two entities; after a comma only "and" / "or" may follow
    ("right upper, right middle and left lower lobes" is one group, "in comparison with the left, the
    right costophrenic angle" two)."""
    if not all(w in joiners for w in gap):
        return False
    return "," not in gap or all(w in (",", "and", "or") for w in gap[gap.index(",") :])


def _read_phrases(tokens: list[Token], groups: list[Group]) -> list[Group]:
    lower = [t.text.lower() for t in tokens]
    for phrase, word in _phrases():
        for i in range(len(lower) - len(phrase) + 1):
            if tuple(lower[i : i + len(phrase)]) != phrase:
                continue
            end = i + len(phrase) - 1
            hit = [g for g in groups if g.start >= 0 and g.start <= end and i <= g.end]
            if hit:
                start, stop = min(i, *(g.start for g in hit)), max(end, *(g.end for g in hit))
                groups = sorted([g for g in groups if g not in hit] + [Group((word,), start, stop)],
                                key=lambda g: (g.start, g.end))
    return groups


# -- anatomy that does not locate a finding -----------------------------------------------------------


def not_finding_anatomy(
    sentence: str, group: Group, tokens: Sequence[Token] | None = None, triggers: Sequence[Trigger] | None = None
) -> str | None:
    """Why a group does not locate any finding ("view", "comparison", "normal", "negated"), or None.

    A side word of a view or position ("left lateral decubitus film"), the reference of a comparison
    ("compared to the left"), anatomy said to be normal ("the lungs are otherwise clear", "clear lungs")
    and anatomy inside a negated ConText scope ("no left effusion": RadGraph tags it ANAT-DP all the same).
    """
    if group.start < 0:
        return None
    r = rules()
    tokens = tokens if tokens is not None else tokenize(sentence)
    lower = [t.text.lower() for t in tokens]
    after = lower[group.end + 1 : group.end + 1 + r["view_window"]]
    if _words("view_words") & {*after, *(w.lower() for w in group.words)}:
        return "view"
    if _first(lower, group.start - 1, -1, _words("comparison_skip")) in _words("comparison_words"):
        return "comparison"
    normal = _words("normal_words")
    if _first(lower, group.end + 1, 1, _words("normal_skip")) in normal:
        return "normal"
    if _first(lower, group.start - 1, -1, frozenset({"otherwise"})) in normal:
        return "normal"
    span = (tokens[group.start].start, tokens[group.end].end)
    certainty = default_context().certainty(sentence, *span, triggers)
    return "negated" if certainty == NEGATED else None


def _first(words: list[str], i: int, step: int, skip: frozenset[str]) -> str | None:
    while 0 <= i < len(words) and words[i] in skip:
        i += step
    return words[i] if 0 <= i < len(words) else None


# -- attaching anatomy to findings --------------------------------------------------------------------


def _token_span(tokens: list[Token], start: int, end: int) -> tuple[int, int]:
    inside = [i for i, t in enumerate(tokens) if t.start < end and start < t.end]
    return (inside[0], inside[-1]) if inside else (-1, -1)


def _other_findings(tokens: list[Token]) -> set[tuple[int, int]]:
    """Token spans of non-target findings and devices ("thickening", "nodule", "PICC")."""
    words = _words("other_findings") | _words("devices")
    return {(i, i) for i, t in enumerate(tokens) if t.text.lower() in words}


def _attach(tokens: list[Token], group: Group, anchors: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The finding a group describes: the one it overlaps, the one right before it ("effusions
    bilaterally"), the one before it after a preposition, one at most ``attach_window`` tokens after it,
    else the nearest."""
    r = rules()
    overlap = [f for f in anchors if f[0] <= group.end and group.start <= f[1]]
    before = [f for f in anchors if f[1] < group.start]
    after = [f for f in anchors if f[0] > group.end]
    previous = [t.text.lower() for t in tokens[max(0, group.start - 2) : group.start]]
    prepositions = set(r["prepositions"])
    after_preposition = bool(previous) and (previous[-1] in prepositions or previous[0] in prepositions)
    if overlap:
        return overlap[0]
    if before and before[-1][1] == group.start - 1:
        return before[-1]
    if before and after_preposition:
        return before[-1]
    if after and after[0][0] - group.end - 1 <= r["attach_window"]:
        return after[0]
    if before or after:
        return min([*before, *after], key=lambda f: min(abs(f[0] - group.end), abs(group.start - f[1])))
    return None


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Token spans overlap ("airspace opacities", a Pneumonia term, holds the Lung Opacity mention)."""
    return a[0] <= b[1] and b[0] <= a[1]


def _linked(tokens: list[Token], a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether a link word ("may represent", "likely", "adjacent") joins findings ``a`` and ``b``."""
    first, second = sorted([a, b])
    between = [t.text.lower() for t in tokens[first[1] + 1 : second[0]]]
    if len(between) > rules()["link_window"] or {".", ";"} & set(between):
        return False
    return bool(_words("link_words") & set(between))


def attached_groups(
    sentence: str,
    groups: Sequence[Group],
    findings: Sequence[tuple[int, int]],
    targets: Sequence[tuple[int, int]],
) -> list[Group]:
    """The groups that describe a target finding, when a sentence names several findings.

    Each group is attached to one finding (:func:`_attach`): a pathology term (character spans
    ``findings``) or a non-target finding or device word of ``location_rules.yaml``. Groups attached to a
    ``targets`` span are kept, as are groups without token positions. If none is, the target borrows the
    groups of a pathology finding that a link word ties to it ("right lower lobe opacity may represent
    atelectasis"); anatomy of other findings and devices is never borrowed.
    """
    tokens = tokenize(sentence)
    pathology = sorted({_token_span(tokens, s, e) for s, e in findings} - {(-1, -1)})
    wanted = {_token_span(tokens, s, e) for s, e in targets}
    anchors = sorted(set(pathology) | (_other_findings(tokens) - set(pathology)))
    kept, borrowed = [], []
    for group in groups:
        if group.start < 0:
            kept.append(group)
            continue
        chosen = _attach(tokens, group, anchors)
        if chosen is None:
            continue
        if any(_overlaps(chosen, t) for t in wanted):
            kept.append(group)
        elif chosen in pathology and any(_linked(tokens, chosen, t) for t in wanted if t[0] >= 0):
            borrowed.append(group)
    return kept if any(g.start >= 0 for g in kept) else kept + borrowed


def _share_sides(units: list[list[_Unit]]) -> list[list[_Unit]]:
    """A side said on its own ("on the left", "bilaterally", "in the right hemithorax") goes to the
    unsided zones of the same finding ("basilar atelectasis on the left" -> left base)."""
    flat = [u for group in units for u in group]
    sides = [s for u in flat if u.side_only for s in u.sides]
    if not sides or not any(u.unsided_zone for u in flat):
        return units
    out = []
    for group in units:
        kept = []
        for unit in group:
            if unit.side_only:
                continue
            if unit.unsided_zone:
                unit.sides = list(sides)
            kept.append(unit)
        out.append(kept)
    return out


# -- terms and merging --------------------------------------------------------------------------------


def _pathology_rule(pathology: str) -> dict:
    table = rules()["pathology_rules"]
    return table.get(pathology, table["default"])


def filter_for_pathology(terms: Iterable[str], pathology: str) -> list[str]:
    """Apply the pathology's allow / exclude / rename rules."""
    rule = _pathology_rule(pathology)
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
        result = {t for t in result if not (t in parts and not parts[t][1] and _covered(parts[t][0], specific))}
    return order_locations(result)


def _covered(side: str, specific_sides: set[str]) -> bool:
    if side == "bilateral":
        return "bilateral" in specific_sides or {"left", "right"} <= specific_sides
    return side in specific_sides or "bilateral" in specific_sides


def finalize(terms: Iterable[str], pathology: str) -> tuple[str, ...]:
    """Pathology filter, bilateral merge, then the pathology's renames (merge first: left + right edema
    becomes bilateral, then pulmonary)."""
    merged = merge_bilateral(filter_for_pathology(terms, pathology))
    rename = _pathology_rule(pathology).get("rename", {})
    return order_locations(rename.get(term, term) for term in merged)


def sentence_locations(
    sentence: str,
    entities: Sequence[Entity],
    pathology: str,
    mentions: Sequence[tuple[int, int]] = (),
    exclude_words: Iterable[str] = (),
    findings: Sequence[tuple[int, int]] | None = None,
) -> tuple[str, ...]:
    """The merged location terms of one sentence for one pathology (see the module docstring).

    ``mentions`` are the character spans of the pathology's usable mentions (their ``exclude_words`` are
    not locations); with ``findings`` (spans of every pathology term in the sentence) only the anatomy
    attached to a mention is used, otherwise all of the sentence's anatomy. With ``mentions`` (a sentence
    that mentions the pathology), a pathology with a ``default`` location in ``location_rules.yaml`` gets
    it when no anatomy locates it.
    """
    return locate_sentence(sentence, entities, pathology, mentions, mentions, exclude_words, findings)


def locate_sentence(
    sentence: str,
    entities: Sequence[Entity],
    pathology: str,
    mentions: Sequence[tuple[int, int]] = (),
    exclude: Sequence[tuple[int, int]] = (),
    exclude_words: Iterable[str] = (),
    findings: Sequence[tuple[int, int]] | None = None,
) -> tuple[str, ...]:
    """:func:`sentence_locations` with the spans whose ``exclude_words`` are dropped given apart
    (``exclude``: e.g. every pathology term, so "pleural" of "pleural effusion" is never a location)."""
    tokens = tokenize(sentence)
    groups = entity_groups(sentence, entities, exclude, exclude_words)
    if groups:
        triggers = default_context().triggers(sentence)
        groups = [g for g in groups if not_finding_anatomy(sentence, g, tokens, triggers) is None]
    if findings is not None:
        groups = attached_groups(sentence, groups, findings, mentions)
    units = _share_sides([_units(g.words) for g in groups])
    strong = finalize((t for group in units for u in group if not u.weak for t in u.emit()), pathology)
    terms = strong or finalize((t for group in units for u in group if u.weak for t in u.emit()), pathology)
    default = _pathology_rule(pathology).get("default")
    if not terms and mentions and default:
        terms = (default,)
    return terms


def report_locations(per_sentence: Iterable[Iterable[str]], pathology: str) -> tuple[str, ...]:
    """Report-level merge over the sentences' terms ("left lower" + "right lower" -> "bilateral lower")."""
    return finalize((t for terms in per_sentence for t in terms), pathology)
