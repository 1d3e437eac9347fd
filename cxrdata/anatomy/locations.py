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

The same merge runs on a sentence's terms and on the union over a report. The steps live in their own
modules: word lists in :mod:`.location_rules`, steps 1-3 in :mod:`.location_groups`, steps 4-5 in
:mod:`.location_units`, step 6 in :mod:`.location_merge`; this module joins them for one sentence and
re-exports their public names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cxrdata.anatomy.location_groups import Group, attached_groups, entity_groups, not_finding_anatomy
from cxrdata.anatomy.location_merge import (
    filter_for_pathology,
    finalize,
    merge_bilateral,
    pathology_rule,
    report_locations,
)
from cxrdata.anatomy.location_rules import anatomy_words, order_locations, rules
from cxrdata.anatomy.location_units import phrase_locations, read_units, share_sides
from cxrdata.text.context import default_context
from cxrdata.text.entities import Entity
from cxrdata.text.tokens import tokenize

__all__ = ["Group", "anatomy_words", "attached_groups", "entity_groups", "filter_for_pathology", "finalize",
           "locate_sentence", "merge_bilateral", "not_finding_anatomy", "order_locations", "phrase_locations",
           "report_locations", "rules", "sentence_locations"]


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
    units = share_sides([read_units(g.words) for g in groups])
    strong = finalize((t for group in units for u in group if not u.weak for t in u.emit()), pathology)
    terms = strong or finalize((t for group in units for u in group if u.weak for t in u.emit()), pathology)
    default = pathology_rule(pathology).get("default")
    if not terms and mentions and default:
        terms = (default,)
    return terms
