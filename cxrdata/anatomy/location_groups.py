"""Grouping a sentence's anatomy entities, dropping anatomy that locates no finding, and attaching the
rest to the finding it describes (steps 1-3 of :mod:`cxrdata.anatomy.locations`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cxrdata.anatomy.location_rules import phrases, rules, word_set
from cxrdata.text.context import NEGATED, Trigger, default_context
from cxrdata.text.entities import ANAT_DP, Entity
from cxrdata.text.tokens import Token, tokenize


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
    joiners = set(rules()["connectors"]) | word_set("modifiers")
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


def _read_phrases(tokens: Sequence[Token], groups: list[Group]) -> list[Group]:
    lower = [t.text.lower() for t in tokens]
    for phrase, word in phrases():
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
    if word_set("view_words") & {*after, *(w.lower() for w in group.words)}:
        return "view"
    if _first(lower, group.start - 1, -1, word_set("comparison_skip")) in word_set("comparison_words"):
        return "comparison"
    normal = word_set("normal_words")
    if _first(lower, group.end + 1, 1, word_set("normal_skip")) in normal:
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


def _token_span(tokens: Sequence[Token], start: int, end: int) -> tuple[int, int]:
    inside = [i for i, t in enumerate(tokens) if t.start < end and start < t.end]
    return (inside[0], inside[-1]) if inside else (-1, -1)


def _other_findings(tokens: Sequence[Token]) -> set[tuple[int, int]]:
    """Token spans of non-target findings and devices ("thickening", "nodule", "PICC")."""
    found = word_set("other_findings") | word_set("devices")
    return {(i, i) for i, t in enumerate(tokens) if t.text.lower() in found}


def _attach(tokens: Sequence[Token], group: Group, anchors: list[tuple[int, int]]) -> tuple[int, int] | None:
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


def _linked(tokens: Sequence[Token], a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether a link word ("may represent", "likely", "adjacent") joins findings ``a`` and ``b``."""
    first, second = sorted([a, b])
    between = [t.text.lower() for t in tokens[first[1] + 1 : second[0]]]
    if len(between) > rules()["link_window"] or {".", ";"} & set(between):
        return False
    return bool(word_set("link_words") & set(between))


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
