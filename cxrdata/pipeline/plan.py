"""A plan: one output config's source, filters and stages, assembled from a recipe and checked before any work.

:func:`plan_build` reads the registry entry of a dataset, builds its options from the recipe's ``source``
section and the command line (explicit command-line values win), makes the image stage of each source's
image kind from the ``image`` section, and adds the recipe's stages, each placed as early as its
``needs`` allow. The plan is refused, in one line, when a stage's needs are not met or when the
output columns differ from the schema's. Engines receive plans, not sources.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cxrdata.errors import CxrdataError
from cxrdata.imaging.stages import ImageOptions, ImageStage
from cxrdata.io.schema import TableSchema, image_columns_as_paths, load_schema
from cxrdata.recipe import (
    BuildRecipe,
    build_recipe_names,
    default_recipe,
    described,
    load_build_recipe,
    option_fields,
    option_name,
    options_from,
)
from cxrdata.records import Records
from cxrdata.sources.base import RAW_KEYS, Filter, InputFile, Source
from cxrdata.sources.registry import entry
from cxrdata.sources.subset import SubjectList, SubsetFilter, SubsetOptions, subset_described
from cxrdata.stage import Stage
from cxrdata.targets.recipe_stages import SPECS, StageContext


@dataclass
class ConfigPlan:
    """What one config of a build is: where its records come from and what turns them into rows."""

    source: Source
    stages: list[Stage]
    schema: TableSchema
    recipe: str
    filters: list[Filter] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # the options the manifest shows
    notices: list[str] = field(default_factory=list)
    stage_inputs: list[Path] = field(default_factory=list)  # files the recipe's stages read (a LUT)

    @property
    def config(self) -> str:
        return self.schema.name

    def inputs(self) -> list[InputFile]:
        """The files this config reads: the source's, then the stages' (for the manifest)."""
        return [*self.source.inputs(), *(InputFile(str(p.resolve()), p.stat().st_size) for p in self.stage_inputs)]

    @property
    def image_stage(self) -> ImageStage:
        return next(s for s in self.stages if isinstance(s, ImageStage))

    def records(self) -> tuple[Records, dict[str, int]]:
        """The raw records after the whole-dataset filters, and every count of what became no record."""
        records = self.source.records()
        excluded: Counter[str] = Counter(self.source.excluded)
        for flt in self.filters:
            records, removed = flt.apply(records)
            excluded.update(removed)
        return records, dict(sorted(excluded.items()))

    def filter_notices(self) -> list[str]:
        """What the whole-dataset filters found worth saying once they ran (e.g. unknown --subjects keys)."""
        return [line for flt in self.filters for line in getattr(flt, "notices", list)()]

    def records_per_task(self) -> int:
        return self.image_stage.records_per_task()

    def check(self) -> None:
        """Refuse a chain whose stages miss their inputs, or whose columns are not the schema's."""
        keys = RAW_KEYS | self.source.record_keys()
        for stage in self.stages:
            if not stage.can_run_on(keys):
                missing = sorted(stage.needs - keys) or [" or ".join(sorted(g)) for g in stage.needs_one_of]
                raise CxrdataError(f"config {self.config}: stage {stage.name} needs {', '.join(missing)}, which no "
                                   "earlier stage gives (a recipe stage this dataset cannot feed?)")
            keys = stage.keys_after(keys)
        public = {k for k in keys if not k.startswith("_")}
        if public != set(self.schema.names):
            names = set(self.schema.names)
            raise CxrdataError(f"config {self.config}: its stages give columns {sorted(public - names)} the schema "
                               f"lacks, and lack {sorted(names - public)}")


def output_schema(schema: TableSchema, stages: list[Stage]) -> TableSchema:
    """The table a config writes: its schema, with the image column as a string path when its image stage
    stores path strings (path mode of a DICOM or 16-bit PNG source)."""
    if any(isinstance(s, ImageStage) and s.stores_path_strings for s in stages):
        return image_columns_as_paths(schema)
    return schema


def _field_names(cls: type | None) -> set[str]:
    return {f.name for f in fields(cls)} if cls is not None else set()


def _insert(stages: list[Stage], stage: Stage, keys: frozenset[str]) -> None:
    """Put ``stage`` at the earliest position its needs allow (cheap text work before an image decode)."""
    for i in range(len(stages) + 1):
        if stage.can_run_on(keys):
            stages.insert(i, stage)
            return
        if i < len(stages):
            keys = stages[i].keys_after(keys)
    stages.append(stage)  # check() names what is missing


def plan_build(dataset: str, recipe: str | Path | BuildRecipe | None = None, *, out: Path,
               source: Mapping[str, Any] | None = None, image: Mapping[str, Any] | None = None,
               stages: Mapping[str, Any] | None = None, subset: Mapping[str, Any] | None = None) -> list[ConfigPlan]:
    """The plans of ``cxrdata build DATASET [--recipe RECIPE]``: one per output config.

    ``source``, ``image`` and ``stages`` hold values given explicitly (command line or API), by option
    field name; they replace the recipe's. A stage value no stage of the recipe takes is refused.
    ``subset`` (``limit``, ``subjects``, ``splits``: :mod:`cxrdata.sources.subset`) narrows every config."""
    dataset_entry = entry(dataset)
    if isinstance(recipe, BuildRecipe):
        book = recipe
    else:
        book = load_build_recipe(recipe) if recipe else default_recipe(dataset)
    if dataset not in book.datasets:
        raise CxrdataError(f"recipe {book.name} is for `cxrdata build` {', '.join(book.datasets)}, "
                           f"not `build {dataset}`")
    where = f"recipe {book.path}" if book.path else f"build {dataset}"
    subset = dict(subset or {})
    source_values = {**book.source, **(source or {})}
    if "splits" in subset and "splits" in _field_names(dataset_entry.options):
        source_values["splits"] = subset.pop("splits")  # a reader of per-split files keeps them itself
    source_options = options_from(dataset_entry.options, source_values, f"{where}: source")
    stage_values = dict(stages or {})
    unused = set(stage_values) - {n for name, _ in book.stages if name in SPECS
                                  for n in _field_names(SPECS[name].options)}
    if unused:
        takers = recipes_taking(dataset, unused)
        raise CxrdataError(f"{', '.join('--' + u.replace('_', '-') for u in sorted(unused))} "
                           f"{'applies' if len(unused) == 1 else 'apply'} only with a --recipe that has "
                           f"{'it' if len(unused) == 1 else 'them'} ({', '.join(takers) or 'none for ' + dataset})")
    plans = [_config_plan(src, book, where, out, dict(image or {}), stage_values)
             for src in dataset_entry.sources(source_options)]
    return _with_subset(plans, dataset, subset)


def _with_subset(plans: list[ConfigPlan], dataset: str, values: Mapping[str, Any]) -> list[ConfigPlan]:
    """The plans narrowed to a subset; a config none of whose splits is selected is left out, with a notice."""
    options = options_from(SubsetOptions, values, f"build {dataset}")
    if not options.any:
        return plans
    if options.splits is not None:
        known = {s for plan in plans for s in plan.source.splits}
        unknown = [s for s in options.splits if s not in known]
        if unknown:
            raise CxrdataError(f"--splits {','.join(unknown)}: {dataset} has the splits {', '.join(sorted(known))}")
    subjects = SubjectList.read(options.subjects) if options.subjects is not None else None
    kept, left_out = [], []
    for plan in plans:
        if options.splits is not None and not set(plan.source.splits) & set(options.splits):
            left_out.append(f"{plan.config} (splits {', '.join(plan.source.splits)})")
            continue
        plan.filters.append(SubsetFilter(options, plan.config, subjects))
        plan.options.update(subset_described(options, subjects))
        kept.append(plan)
    for plan in kept:
        plan.notices += [f"not built: {name}, none of whose splits --splits selects" for name in left_out]
    return kept


def recipes_taking(dataset: str, names: set[str]) -> list[str]:
    """The bundled recipes of ``dataset`` one of whose stages has an option among ``names``."""
    found = []
    for name in build_recipe_names():
        book = load_build_recipe(name)
        if dataset in book.datasets and any(names & _field_names(SPECS[s].options) for s, _ in book.stages):
            found.append(name)
    return found


def _config_plan(src: Source, book: BuildRecipe, where: str, out: Path, image_values: dict[str, Any],
                 stage_values: dict[str, Any]) -> ConfigPlan:
    kind = src.image
    kind_fields = _field_names(kind.options)
    recipe_image = {k: v for k, v in book.image.items()}
    unknown = set(recipe_image) - _field_names(ImageOptions) - kind_fields
    if unknown:
        raise CxrdataError(f"{where}: image: unknown key(s) {', '.join(sorted(unknown))} "
                           f"(known: {', '.join(sorted(_field_names(ImageOptions) | kind_fields))})")
    merged = {**recipe_image, **image_values}
    image_options = options_from(ImageOptions, {k: v for k, v in merged.items() if k in _field_names(ImageOptions)},
                                 f"{where}: image")
    extra = options_from(kind.options, {k: v for k, v in merged.items() if k in kind_fields}, f"{where}: image") \
        if kind.options is not None else None
    given_to_other_kind = set(image_values) - _field_names(ImageOptions) - kind_fields
    if given_to_other_kind:
        raise CxrdataError(f"{', '.join('--' + k.replace('_', '-') for k in sorted(given_to_other_kind))} does not "
                           f"apply to {src.dataset} images")
    image_stage = kind.configured(image_options, extra)
    chain = src.stages(image_stage)
    config = book.output_config(src.config)
    try:
        schema = output_schema(load_schema(config), chain)
    except CxrdataError as exc:
        raise CxrdataError(f"{where}: output {config!r}: {exc}") from None
    options: dict[str, Any] = {**src.describe(), **_image_described(image_options, extra)}
    filters: list[Filter] = list(src.filters())
    notices: list[str] = []
    stage_inputs: list[Path] = []
    context = StageContext(columns=tuple(schema.names), out=out, recipe=book.name,
                           box_classes=getattr(src, "box_classes", None))
    keys = RAW_KEYS | src.record_keys()
    for name, values in book.stages:
        if name not in SPECS:
            raise CxrdataError(f"{where}: unknown stage {name!r} (known: {', '.join(SPECS)})")
        spec = SPECS[name]
        names = _field_names(spec.options)
        stage_options = options_from(spec.options, {**values, **{k: v for k, v in stage_values.items() if k in names}},
                                     f"{where}: stage {name}")
        made = spec.make(stage_options, context)
        for stage in made.stages:
            _insert(chain, stage, keys)
        options.update(made.describe)
        filters += list(made.filters)
        notices += list(made.notices)
        stage_inputs += list(made.inputs)
    plan = ConfigPlan(src, chain, schema, book.name, filters, options, notices, stage_inputs)
    plan.check()
    return plan


def _image_described(image: ImageOptions, extra: Any) -> dict[str, Any]:
    """The image options as manifests have always shown them (fit and pixel limit only when not the default)."""
    shown: dict[str, Any] = {"image_size": image.size, "image_format": image.format}
    if image.fit != "longest":
        shown["image_fit"] = image.fit
    if image.max_pixels != ImageOptions.__dataclass_fields__["max_pixels"].default:
        shown["max_pixels"] = image.max_pixels
    if extra is not None:
        shown.update({f"dicom_{k}" if not k.startswith("dicom") else k: v for k, v in described(extra).items()})
    return shown


@dataclass(frozen=True)
class OptionGroups:
    """The options a build of one dataset takes, by group: name -> field name."""

    source: dict[str, str]
    image: dict[str, str]
    stages: dict[str, str]
    subset: dict[str, str] = field(default_factory=dict)

    def split(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
        """(source, image, stage, subset) values by field name, from values by option name; unknown names
        refused."""
        groups = (self.source, self.image, self.stages, self.subset)
        unknown = set(values).difference(*groups)
        if unknown:
            known = sorted(set().union(*groups))
            raise CxrdataError(f"unknown option(s) {', '.join(sorted(unknown))}; known: {', '.join(known)}")
        return tuple({field: values[name] for name, field in group.items() if name in values} for group in groups)


def option_groups(dataset: str) -> OptionGroups:
    """Every option ``build DATASET`` takes: its own, its image kind's, and those of the stages of the
    bundled recipes it accepts."""
    dataset_entry = entry(dataset)
    image = {option_name(f): f.name for f in option_fields(ImageOptions)}
    for kind in dataset_entry.image_kinds:
        if kind.options is not None:
            image.update({option_name(f): f.name for f in option_fields(kind.options)})
    stages: dict[str, str] = {}
    for name in build_recipe_names():
        book = load_build_recipe(name)
        if dataset in book.datasets:
            for stage, _ in book.stages:
                stages.update({option_name(f): f.name for f in option_fields(SPECS[stage].options)})
    subset = {option_name(f): f.name for f in option_fields(SubsetOptions)}
    return OptionGroups({option_name(f): f.name for f in option_fields(dataset_entry.options)}, image, stages, subset)
