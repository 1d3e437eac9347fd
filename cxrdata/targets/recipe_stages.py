"""The stages a build recipe can add (``stages:`` in ``recipes/*.yaml``), each with its options class.

A spec makes the stage(s) from checked options, says what the manifest records of them, and may add a
whole-dataset filter. The plan (:mod:`cxrdata.pipeline.plan`) places each stage as early as its
``needs`` allow: the language stage before the image stage (a report without a location is never
decoded), the LoFi targets after it (they need the original size).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cxrdata.anatomy.lut import lut_digest, read_lut
from cxrdata.errors import CxrdataError
from cxrdata.extract.select import EXTRACTOR_CHOICES, extractor_label, select_extractor
from cxrdata.recipe import option
from cxrdata.stage import Record, Stage
from cxrdata.targets.box_classes import BoxClasses
from cxrdata.targets.box_text import FORMATS
from cxrdata.targets.locate_stage import PhraseLocateStage, ReportLocateStage
from cxrdata.targets.regions_stage import RegionTargetsStage
from cxrdata.targets.synth_prompts import PerClassStage, SynthPromptStage, class_slug


@dataclass(frozen=True)
class StageContext:
    """What a spec may use besides its options: the config's schema columns, the build's OUT, the recipe, and
    the box classes the source declares (``box_classes``; None for a dataset without boxes)."""

    columns: tuple[str, ...]
    out: Path
    recipe: str
    box_classes: BoxClasses | None = None


@dataclass(frozen=True)
class Made:
    """A spec's stages, the options the manifest shows, filters on raw records and lines for the user."""

    stages: list[Stage]
    describe: dict[str, Any]
    filters: Sequence[Any] = ()
    notices: Sequence[str] = ()
    inputs: Sequence[Path] = ()  # files the stages read (a LUT): recorded in the manifest's inputs


@dataclass(frozen=True)
class StageSpec:
    name: str
    options: type
    make: Callable[[Any, StageContext], Made]
    summary: str


# -- the language stage (seed 003's curation) ----------------------------------------------------------------

EXTRACTOR_HELP = ("Entity extractor; default: the recipe's (auto: RadGraph-XL when its weights are in "
                  "--radgraph-cache, else the rules).")


@dataclass(frozen=True)
class LanguageOptions:
    """What both language stages share."""

    extractor: Literal["auto", "radgraph", "rules"] = option("auto", EXTRACTOR_HELP, choices=EXTRACTOR_CHOICES)
    radgraph_cache: Path | None = option(None, "Folder holding radgraph-xl/ (config.json, vocabulary/, weights.th); "
                                               "default: radgraph's.", runtime=True)
    device: str = option("auto", "RadGraph device: auto, cpu, cuda, cuda:N.", runtime=True)
    extraction_cache: Path | None = option(None, "SQLite cache of extractor results (reusable across builds); "
                                                 "default: OUT/cache/extract.sqlite.", runtime=True)
    lut: Path | None = option(None, "Gaussian LUT JSON: adds each location's Gaussian (gaussians, lut_grid columns).")
    include_uncertain: bool = option(False, "Whether an uncertain mention counts.", cli=False)


@dataclass(frozen=True)
class LocateOptions(LanguageOptions):
    sections: tuple[str, ...] = option(("findings", "impression"), "Report sections searched.", cli=False)
    fallback: tuple[str, ...] = option(("last_paragraph",), "Sections used when a report has none of those.",
                                       cli=False)

    def __post_init__(self) -> None:
        names = ("findings", "impression", "last_paragraph")
        if not set(self.sections) <= set(names) or not set(self.fallback) <= set(names):
            raise ValueError(f"'sections' and 'fallback' list report sections of {', '.join(names)}")


@dataclass(frozen=True)
class PhraseLocateOptions(LanguageOptions):
    require_mention: bool = option(False, "Reject a phrase that never names its category.", cli=False)


def _language(options: LanguageOptions, context: StageContext) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The stage's common arguments, what the manifest shows of them, and the extractor line."""
    selection = select_extractor(options.extractor, options.radgraph_cache, options.device)
    lut = read_lut(options.lut) if options.lut is not None else None
    cache = options.extraction_cache or context.out / "cache" / "extract.sqlite"
    kwargs = {"extractor": selection.extractor, "extraction_cache": cache, "lut": lut, "columns": context.columns,
              "include_uncertain": options.include_uncertain}
    shown = {"recipe": context.recipe, "extractor": extractor_label(selection.extractor),
             "lut": f"grid {lut.grid}, sha256 {lut_digest(lut)}" if lut is not None else None}
    return kwargs, shown, [f"extractor: {selection.label} ({selection.requested}: {selection.reason})"]


def make_locate(options: LocateOptions, context: StageContext) -> Made:
    kwargs, shown, notices = _language(options, context)
    stage = ReportLocateStage(sections=options.sections, fallback=options.fallback, **kwargs)
    return Made([stage], shown, notices=notices, inputs=[options.lut] if options.lut else [])


def make_phrase_locate(options: PhraseLocateOptions, context: StageContext) -> Made:
    kwargs, shown, notices = _language(options, context)
    return Made([PhraseLocateStage(require_mention=options.require_mention, **kwargs)], shown, notices=notices,
                inputs=[options.lut] if options.lut else [])


# -- LoFi region targets -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionTargetsOptions:
    box_format: Literal["lofi", "paligemma", "florence2", "maira2", "plain"] = option(
        "lofi", "Box text format of the grounding and dense-caption targets; default: the recipe's (lofi).",
        choices=FORMATS)


def make_region_targets(options: RegionTargetsOptions, context: StageContext) -> Made:
    return Made([RegionTargetsStage(box_format=options.box_format)],
                {"recipe": context.recipe, "box_format": options.box_format})


# -- synthetic prompts for boxes (seed 003, appendix B) ---------------------------------------------------------


@dataclass(frozen=True)
class SynthPromptOptions:
    lut: Path | None = option(None, "LUT JSON (cxrdata lut build); required.")
    classes: tuple[str, ...] | None = option(
        None, "Comma-separated box classes of the dataset; default: those among the 8 pathologies of "
              "Vilouras et al. 2025.")
    include_mixtures: bool = option(False, "Let boxes match the bilateral mixtures too (through their "
                                           "moment-matched Gaussian).")


@dataclass(frozen=True)
class ClassFilter:
    """Images without a box of a selected class become no row (counted ``image_without_selected_class``)."""

    classes: tuple[str, ...]
    vocabulary: BoxClasses
    name: str = "selected-classes"

    def apply(self, records: list[Record]) -> tuple[list[Record], Counter[str]]:
        kept = [r for r in records if self.vocabulary.present(r) & set(self.classes)]
        return kept, Counter({"image_without_selected_class": len(records) - len(kept)} if len(kept) < len(records)
                             else {})


def make_synth_prompts(options: SynthPromptOptions, context: StageContext) -> Made:
    if context.box_classes is None:
        raise CxrdataError(f"the {context.recipe} recipe needs a dataset with box classes")
    if options.lut is None:
        raise CxrdataError(f"the {context.recipe} recipe needs --lut LUT.json (cxrdata lut build)")
    lut, classes = read_lut(options.lut), context.box_classes.resolve(options.classes)
    stages: list[Stage] = [PerClassStage(classes=classes), SynthPromptStage(
        lut=lut, include_mixtures=options.include_mixtures, columns=context.columns, vocabulary=context.box_classes)]
    shown = {"lut": str(options.lut), "lut_sha256": lut_digest(lut), "classes": list(classes),
             "include_mixtures": options.include_mixtures}
    return Made(stages, shown, filters=[ClassFilter(classes, context.box_classes)], inputs=[options.lut])


SPECS: dict[str, StageSpec] = {spec.name: spec for spec in (
    StageSpec("locate", LocateOptions, make_locate,
              "locate the study's one pathology in its report: '{location} {pathology}' prompts"),
    StageSpec("locate-phrase", PhraseLocateOptions, make_phrase_locate,
              "locate an MS-CXR phrase: '{location} {pathology}' prompts"),
    StageSpec("lofi-targets", RegionTargetsOptions, make_region_targets,
              "grounding and dense-caption text targets beside the regions"),
    StageSpec("synth-prompts", SynthPromptOptions, make_synth_prompts,
              "'{location} {class}' prompts for boxes: nearest LUT Gaussian by W2"),
)}

__all__ = ["SPECS", "Made", "StageContext", "StageSpec", "class_slug"]
