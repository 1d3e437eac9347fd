"""The language stage: report (or MS-CXR phrase) -> located sentences -> ``"{location} {pathology}"`` prompt.

A batch of records costs ONE extractor call over all their candidate sentences (RadGraph-XL batches them).
The extractor is chosen in the main process (:mod:`cxrdata.extract.select`, so its ``name@version`` is in
the config hash), loaded in ``setup()`` once per worker and wrapped in the persistent SQLite cache, so a
rerun never recomputes a sentence. The curation itself is :mod:`cxrdata.targets.locate`: the candidate
sentences of each report are found once per batch (a report shared by several images once), then located.

A record without a location becomes a reject of stage ``locate`` with the reasons of
:mod:`cxrdata.targets.locate`: ``no_sentence``, ``negated``, ``uncertain`` or ``no_location``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cxrdata.anatomy.locations import sentence_locations
from cxrdata.anatomy.lut import GaussianLUT, lut_digest
from cxrdata.errors import Rejected
from cxrdata.extract.base import Extractor
from cxrdata.extract.cache import CachedExtractor, ExtractionCache
from cxrdata.extract.rules import RuleExtractor
from cxrdata.extract.select import extractor_label, load_extractor, uses_gpu
from cxrdata.stage import Record, Reject, Resources, Stage
from cxrdata.targets.locate import (
    DROP_NEGATED,
    DROP_UNCERTAIN,
    NO_LOCATION,
    NO_SENTENCE,
    ReportLocations,
    Sections,
    batch_candidates,
    locate_candidates,
)
from cxrdata.targets.prompts import build_prompt
from cxrdata.text.entities import Entity
from cxrdata.vocabulary import positive_pathologies

_DETAILS = {
    NO_SENTENCE: "no sentence of {sections} mentions {pathology}",
    DROP_NEGATED: "every mention of {pathology} is negated or resolved",
    DROP_UNCERTAIN: "every mention of {pathology} is uncertain",
    NO_LOCATION: "no location for {pathology} in: {sentences}",
}
_DETAIL_CHARS = 300


@dataclass
class LocateStage(Stage):
    """Finds the locations of a record's pathology and writes its prompt; subclasses say where the text
    and the pathology come from (:meth:`inputs`).

    ``columns``: when given, public keys outside them are dropped (the output schema's columns), so the
    record carries only what its table holds. With a ``lut``, ``gaussians`` lists per location the LUT's
    components ``[mu_x, mu_y, sigma_x, sigma_y]`` on its grid (``lut_grid``); both are null without one.
    """

    name: ClassVar[str] = "locate"
    version: ClassVar[str] = "3"  # 2: the location mapper of issue 13; 3: our sentence splitter (issue 16)
    gives: ClassVar[frozenset[str]] = frozenset({"pathology", "locations", "prompt", "sentences", "extractor",
                                                 "gaussians", "lut_grid"})

    extractor: Extractor = field(default_factory=RuleExtractor)
    extraction_cache: Path | None = None
    lut: GaussianLUT | None = None
    columns: tuple[str, ...] = ()
    include_uncertain: bool = False
    sections: tuple[str, ...] = ("findings", "impression")
    fallback: tuple[str, ...] = ("last_paragraph",)
    _active: Extractor | None = field(default=None, init=False, repr=False)
    _column_set: frozenset[str] | None = field(default=None, init=False, repr=False)

    @property
    def resources(self) -> Resources:  # type: ignore[override]
        return Resources(cpus=1.0, gpus=1.0 if uses_gpu(self.extractor) else 0.0, batch_size=64)

    def fingerprint(self) -> str:
        lut = lut_digest(self.lut) if self.lut is not None else "none"
        text = f"{'+'.join(self.sections)}/{'+'.join(self.fallback) or '-'}"
        return (f"{self.name}@{self.version}:{extractor_label(self.extractor)}:lut={lut}:{text}"
                f":uncertain={int(self.include_uncertain)}")

    def keys_after(self, keys: frozenset[str]) -> frozenset[str]:
        after = keys | self.gives
        return frozenset(k for k in after if k.startswith("_") or k in self.columns) if self.columns else after

    def setup(self) -> None:
        """Load the model (RadGraph) and put the persistent cache in front of it."""
        load_extractor(self.extractor)
        cache = ExtractionCache(self.extraction_cache) if self.extraction_cache is not None else None
        self._active = CachedExtractor(self.extractor, cache) if cache is not None else self.extractor

    def inputs(self, record: Record) -> tuple[Sections, str]:
        """The record's text sections and pathology; raise :class:`Rejected` when it has none."""
        raise NotImplementedError

    def unmentioned_text(self, sections: Sections) -> str | None:
        """Text whose anatomy locates the pathology even though it never names it (None: reject)."""
        return None

    def run(self, batch: list[Record]) -> list[Record | Reject]:
        if self._active is None:
            self.setup()
        assert self._active is not None
        out: list[Record | Reject] = []
        todo: list[tuple[int, Record, Sections, str]] = []
        for record in batch:
            try:
                sections, pathology = self.inputs(record)
            except Rejected as exc:
                out.append(self.reject(record, exc.reason, exc.detail))
                continue
            todo.append((len(out), record, sections, pathology))
            out.append(record)
        if not todo:
            return out
        options: dict[str, Any] = {"include_uncertain": self.include_uncertain,
                                   "section_names": self.sections, "fallback": self.fallback}
        reports = [(sections, pathology) for _, _, sections, pathology in todo]
        found = batch_candidates(reports, **options)  # once: the sentences of each report are split once
        extra = [self.unmentioned_text(s) if reason == NO_SENTENCE else None
                 for (s, _), (_, reason) in zip(reports, found, strict=True)]
        wanted = [c.sentence for kept, _ in found for c in kept] + [t for t in extra if t]
        unique = list(dict.fromkeys(wanted))
        entities = dict(zip(unique, self._active.extract(unique), strict=True)) if unique else {}
        located = locate_candidates(reports, found, entities, self._active.name, self._active.version)
        for (i, record, _, pathology), result, text in zip(todo, located, extra, strict=True):
            out[i] = self._finish(record, pathology, result, text, entities)
        return out

    def _finish(self, record: Record, pathology: str, result: ReportLocations, text: str | None,
                entities: Mapping[str, list[Entity]]) -> Record | Reject:
        terms, sentences = result.locations, [s.sentence for s in result.located]
        reason = result.drop_reason
        if text:
            terms = sentence_locations(text, entities[text], pathology)
            sentences, reason = [text], None if terms else NO_LOCATION
            record.setdefault("_notes", []).append("pathology_not_named")
        if reason is not None:
            tried = " | ".join(s.sentence for s in result.sentences) or (text or "")
            detail = _DETAILS[reason].format(pathology=pathology, sentences=tried,
                                             sections="/".join((*self.sections, *self.fallback)))
            return self.reject(record, reason, detail[:_DETAIL_CHARS])
        record.update(
            pathology=pathology,
            locations=list(terms),
            prompt=build_prompt(terms, pathology),
            sentences=sentences,
            extractor=extractor_label(self.extractor),
            gaussians=[self.lut.params(t).tolist() for t in terms] if self.lut is not None else None,
            lut_grid=self.lut.grid if self.lut is not None else None,
        )
        if self.columns:
            kept = self._kept_columns
            for key in [k for k in record if k not in kept and not k.startswith("_")]:
                del record[key]
        return record

    @property
    def _kept_columns(self) -> frozenset[str]:
        if self._column_set is None:
            self._column_set = frozenset(self.columns)
        return self._column_set


@dataclass
class ReportLocateStage(LocateStage):
    """MIMIC-CXR: the study's one positive CheXpert pathology (of the 8), located in its report."""

    needs: ClassVar[frozenset[str]] = frozenset({"chexpert", "findings", "impression", "last_paragraph"})

    def inputs(self, record: Record) -> tuple[Sections, str]:
        positive = positive_pathologies(record.get("chexpert") or {})
        if len(positive) != 1:
            raise Rejected("not_single_pathology", f"{len(positive)} of the 8 pathologies are positive")
        return record, positive[0]


@dataclass
class PhraseLocateStage(LocateStage):
    """MS-CXR: the phrase is the one sentence, its category the pathology.

    A phrase that never names its category (MS-CXR's annotators tied it to the category anyway, e.g.
    "blunting of the left costophrenic angle" for a pleural effusion) is located from all its anatomy
    unless ``require_mention``; such rows are noted ``pathology_not_named`` in the manifest.
    """

    needs: ClassVar[frozenset[str]] = frozenset({"phrase", "category"})
    sections: tuple[str, ...] = ("phrase",)
    fallback: tuple[str, ...] = ()
    require_mention: bool = False

    def fingerprint(self) -> str:
        return f"{super().fingerprint()}:mention={'required' if self.require_mention else 'optional'}"

    def inputs(self, record: Record) -> tuple[Sections, str]:
        return {"phrase": record["phrase"]}, record["category"]

    def unmentioned_text(self, sections: Sections) -> str | None:
        if self.require_mention or not isinstance(sections, Mapping):
            return None
        return sections.get("phrase")
