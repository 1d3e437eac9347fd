"""Report -> located sentences -> report-level locations for one pathology (seed 003 curation, steps 2-5).

Pure library code: :func:`locate_reports` runs a batch with one ``extract`` call for all candidate
sentences, so a RadGraph-XL or cached extractor sees them together. The pipeline stage runs its two
halves itself (:func:`batch_candidates`, then :func:`locate_candidates`), so that each report's sentences
are split and its candidates found once, also for the sentences it adds to the extractor call.

For each report: split the findings and impression sections into sentences (the last paragraph when the
report has neither), keep the sentences that positively mention the pathology (:mod:`.mentions`), extract
anatomy entities, map the ANAT-DP ones attached to the pathology's mention to location terms per
sentence (:func:`cxrdata.anatomy.locations.locate_sentence`), then merge over the report.
A report without locations gets a drop reason:

- ``no_sentence``: no sentence mentions the pathology;
- ``negated``: every mention is negated or resolved (or a mix of negated and uncertain);
- ``uncertain``: every mention is uncertain (only with ``include_uncertain=False``, the default);
- ``no_location``: positive sentences exist, but no location term came out of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache

from cxrdata.anatomy.locations import locate_sentence, report_locations
from cxrdata.extract.base import Extractor
from cxrdata.targets.prompts import build_prompt
from cxrdata.text.context import NEGATED, POSITIVE, UNCERTAIN
from cxrdata.text.entities import Entity
from cxrdata.text.mentions import (
    Mention,
    find_mentions,
    finding_spans,
    mention_status,
    mentions_pathology,
    pathology_terms,
    usable_mentions,
)
from cxrdata.text.sections import ReportSections
from cxrdata.text.sentences import split_sentences

NO_SENTENCE = "no_sentence"
DROP_NEGATED = "negated"
DROP_UNCERTAIN = "uncertain"
NO_LOCATION = "no_location"
DROP_REASONS = (NO_SENTENCE, DROP_NEGATED, DROP_UNCERTAIN, NO_LOCATION)

Sections = ReportSections | Mapping[str, str | None]


@dataclass(frozen=True)
class LocatedSentence:
    """A sentence that positively mentions the pathology, its entities and its merged locations."""

    section: str
    sentence: str
    locations: tuple[str, ...]
    entities: tuple[Entity, ...]
    extractor: str
    extractor_version: str


@dataclass(frozen=True)
class ReportLocations:
    """The result for one report and pathology; ``drop_reason`` is set when ``locations`` is empty."""

    pathology: str
    locations: tuple[str, ...]
    sentences: tuple[LocatedSentence, ...] = field(default=())
    drop_reason: str | None = None

    @property
    def located(self) -> tuple[LocatedSentence, ...]:
        """The sentences that gave at least one location."""
        return tuple(s for s in self.sentences if s.locations)

    @property
    def prompt(self) -> str | None:
        """``"{location} {pathology}"`` (locations joined with ``<and>``), or None when dropped."""
        return build_prompt(self.locations, self.pathology) if self.locations else None


@dataclass(frozen=True)
class Candidate:
    """A sentence that positively mentions the pathology, with all its mentions and the usable ones
    (:func:`cxrdata.text.mentions.usable_mentions`: those whose anatomy locates it)."""

    section: str
    sentence: str
    mentions: tuple[Mention, ...]
    usable: tuple[Mention, ...] = ()


def _get(sections: Sections, name: str) -> str | None:
    if isinstance(sections, ReportSections):
        return getattr(sections, name, None)
    return sections.get(name)


def candidates(
    sections: Sections,
    pathology: str,
    *,
    include_uncertain: bool = False,
    section_names: Sequence[str] = ("findings", "impression"),
    fallback: Sequence[str] = ("last_paragraph",),
) -> tuple[list[Candidate], str | None]:
    """Sentences positively mentioning ``pathology`` and, when there are none, the drop reason."""
    names = [n for n in section_names if _get(sections, n)] or [n for n in fallback if _get(sections, n)]
    kept: list[Candidate] = []
    statuses: set[str] = set()
    for name in names:
        for sentence, mentions, status, usable in _section_mentions(_get(sections, name), pathology,
                                                                    include_uncertain):
            statuses.add(status)
            if status == POSITIVE:
                kept.append(Candidate(name, sentence, mentions, usable))
    if kept:
        return kept, None
    if not statuses:
        return [], NO_SENTENCE
    return [], DROP_NEGATED if NEGATED in statuses or UNCERTAIN not in statuses else DROP_UNCERTAIN


@lru_cache(maxsize=8192)
def _section_mentions(text: str, pathology: str, include_uncertain: bool) -> tuple[
        tuple[str, tuple[Mention, ...], str, tuple[Mention, ...]], ...]:
    """(sentence, mentions, status, usable mentions) of each sentence of a section that mentions the
    pathology; cached, since the images of a study share their report (and short reports repeat)."""
    if not mentions_pathology(text, pathology):
        return ()  # skip sentence splitting when the section never names the pathology
    out = []
    for sentence in split_sentences(text):
        mentions = find_mentions(sentence, pathology)
        if mentions:
            status = mention_status(mentions, include_uncertain=include_uncertain)
            usable = usable_mentions(mentions, include_uncertain=include_uncertain) if status == POSITIVE else []
            out.append((sentence, tuple(mentions), status, tuple(usable)))
    return tuple(out)


def locate_reports(
    reports: Sequence[tuple[Sections, str]],
    extractor: Extractor,
    *,
    include_uncertain: bool = False,
    section_names: Sequence[str] = ("findings", "impression"),
    fallback: Sequence[str] = ("last_paragraph",),
) -> list[ReportLocations]:
    """:func:`locate_report` for a batch of (sections, pathology), with one ``extract`` call."""
    found = batch_candidates(reports, include_uncertain=include_uncertain, section_names=section_names,
                             fallback=fallback)
    unique = list(dict.fromkeys(c.sentence for kept, _ in found for c in kept))
    entities = dict(zip(unique, extractor.extract(unique), strict=True)) if unique else {}
    return locate_candidates(reports, found, entities, extractor.name, extractor.version)


Found = tuple[list[Candidate], str | None]


def batch_candidates(
    reports: Sequence[tuple[Sections, str]],
    *,
    include_uncertain: bool = False,
    section_names: Sequence[str] = ("findings", "impression"),
    fallback: Sequence[str] = ("last_paragraph",),
) -> list[Found]:
    """:func:`candidates` of each (sections, pathology) of a batch."""
    return [candidates(sections, pathology, include_uncertain=include_uncertain, section_names=section_names,
                       fallback=fallback) for sections, pathology in reports]


def locate_candidates(
    reports: Sequence[tuple[Sections, str]],
    found: Sequence[Found],
    entities: Mapping[str, Sequence[Entity]],
    extractor_name: str,
    extractor_version: str,
) -> list[ReportLocations]:
    """Each report's located sentences and merged locations, from its :func:`candidates` (``found``) and
    the entities of their sentences (``entities``: sentence -> entities)."""
    results = []
    for (_, pathology), (kept, reason) in zip(reports, found, strict=True):
        if reason is not None:
            results.append(ReportLocations(pathology, (), (), reason))
            continue
        located = []
        for c in kept:
            found_entities = tuple(entities[c.sentence])
            spans = tuple((m.start, m.end) for m in (c.usable or c.mentions))
            terms = _sentence_terms(c.sentence, found_entities, pathology, spans)
            located.append(LocatedSentence(c.section, c.sentence, terms, found_entities, extractor_name,
                                           extractor_version))
        merged = report_locations((s.locations for s in located), pathology)
        results.append(ReportLocations(pathology, merged, tuple(located), None if merged else NO_LOCATION))
    return results


@lru_cache(maxsize=16384)
def _sentence_terms(sentence: str, entities: tuple[Entity, ...], pathology: str,
                    spans: tuple[tuple[int, int], ...]) -> tuple[str, ...]:
    """The sentence's location terms for the pathology's mentions at ``spans`` (cached: a sentence such as
    "Small left pleural effusion." recurs across reports)."""
    found = finding_spans(sentence)
    return locate_sentence(sentence, entities, pathology, spans, found, _name_words(), found)


@cache
def _name_words() -> frozenset[str]:
    """Anatomy words of pathology names ("pleural" of "pleural effusion"): never a location inside any
    pathology's mention, whichever pathology is located ("left pleural effusion with adjacent atelectasis")."""
    return frozenset(w for terms in pathology_terms().values() for w in terms.get("not_location_words", []))


def locate_report(
    sections: Sections,
    pathology: str,
    extractor: Extractor,
    *,
    include_uncertain: bool = False,
    section_names: Sequence[str] = ("findings", "impression"),
    fallback: Sequence[str] = ("last_paragraph",),
) -> ReportLocations:
    """Located sentences, report-level locations and prompt (or drop reason) for one report."""
    return locate_reports(
        [(sections, pathology)],
        extractor,
        include_uncertain=include_uncertain,
        section_names=section_names,
        fallback=fallback,
    )[0]
