"""Build recipes (``recipes/*.yaml``) and the prompt sources they make.

A recipe names a build: which dataset (the ``cxrdata build`` command it belongs to), its output config,
filters, image size and format, and the language settings (extractor, sections, uncertainty). The format
is documented in ``recipes/README.md``; every key is checked, so a typo is an error, not a silent default.
Command-line options given explicitly replace the recipe's values (:class:`Overrides`).

- ``ldm-prompts`` (:class:`LdmPromptsSource`): MIMIC-CXR studies whose CheXpert labels have exactly one
  of the 8 pathologies positive, one row per (image, prompt), seed 003's curation;
- ``ms-cxr-loc`` (:class:`MsCxrLocSource`): MS-CXR phrases standardised to ``"{location} {pathology}"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cxrdata.anatomy.lut import GaussianLUT, read_lut
from cxrdata.anatomy.vocabulary import pathologies
from cxrdata.errors import CxrdataError
from cxrdata.extract.base import Extractor
from cxrdata.extract.rules import RuleExtractor
from cxrdata.extract.select import EXTRACTOR_CHOICES, ExtractorSelection, extractor_label, select_extractor
from cxrdata.io.schema import available, load_schema
from cxrdata.pipeline.image_stage import IMAGE_FITS, IMAGE_FORMATS
from cxrdata.pipeline.language_stage import PhraseLocateStage, ReportLocateStage, lut_digest
from cxrdata.pipeline.stage import Record, Stage
from cxrdata.sources.mimic import MimicSource, parse_views
from cxrdata.sources.ms_cxr import MsCxrSource

DATASETS = ("mimic", "ms-cxr")
SECTION_NAMES = ("findings", "impression", "last_paragraph")
# Allowed keys per dataset: section -> {key: type}. Anything else in a recipe is refused.
_KEYS: dict[str, dict[str, dict[str, type]]] = {
    "mimic": {
        "filters": {"views": list, "single_pathology": bool},
        "image": {"size": int, "format": str, "fit": str},
        "language": {"extractor": str, "sections": list, "fallback": list, "include_uncertain": bool},
    },
    "ms-cxr": {
        "image": {"size": int, "format": str},
        "language": {"extractor": str, "include_uncertain": bool, "require_mention": bool},
    },
}
_TOP = ("name", "description", "dataset", "output")


@dataclass(frozen=True)
class Recipe:
    """A parsed, checked recipe; ``None`` values leave the source's default in place."""

    name: str
    description: str
    dataset: str
    output: str  # output config name and schema name (schemas/<output>.json)
    path: Path
    views: tuple[str, ...] | None = None
    single_pathology: bool = True
    image_size: int | None = None
    image_format: str | None = None
    image_fit: str = "longest"  # the side that becomes image.size (mimic recipes): longest | shortest
    extractor: str = "auto"
    sections: tuple[str, ...] | None = None
    fallback: tuple[str, ...] | None = None
    include_uncertain: bool = False
    require_mention: bool = False


def recipes_dir() -> Path:
    """``recipes/`` (it ships inside the package as ``cxrdata.recipes``, a link to the top-level folder)."""
    return Path(str(resources.files("cxrdata.recipes")))


def build_kind(doc: Any) -> str | None:
    """``dataset`` for a recipe naming a ``dataset`` (:class:`Recipe`), ``targets`` for one naming its
    ``targets`` by a string (text targets added to existing builds: :mod:`cxrdata.sources.targets_recipe`),
    None for anything else (training recipes, whose ``targets`` is a mapping)."""
    if not isinstance(doc, dict):
        return None
    if "dataset" in doc:
        return "dataset"
    return "targets" if isinstance(doc.get("targets"), str) else None


def available_recipes() -> list[str]:
    """Names of the bundled build recipes (training recipes are not builds)."""
    return sorted(p.stem for p in recipes_dir().glob("*.yaml") if build_kind(yaml.safe_load(p.read_text())))


def _fail(path: Path, message: str) -> CxrdataError:
    return CxrdataError(f"recipe {path}: {message}")


def read_recipe(name_or_path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The path and YAML mapping of a bundled recipe by name or a YAML file by path (not yet checked)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = recipes_dir() / f"{name_or_path}.yaml"
        if str(name_or_path) not in available_recipes():
            raise CxrdataError(f"no recipe named {name_or_path!r}; bundled: {', '.join(available_recipes())} "
                               "(or give a path to a .yaml file)")
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CxrdataError(f"recipe file {path} not found") from None
    except (OSError, yaml.YAMLError) as exc:
        raise _fail(path, f"not readable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise _fail(path, "must be a YAML mapping")
    return path, doc


def recipe_kind(name_or_path: str | Path) -> str:
    """``targets`` for a targets recipe, else ``dataset`` (checked when loaded)."""
    return build_kind(read_recipe(name_or_path)[1]) or "dataset"


def load_recipe(name_or_path: str | Path) -> Recipe:
    """A bundled recipe by name (``ldm-prompts``) or a YAML file by path, checked key by key."""
    path, doc = read_recipe(name_or_path)
    if build_kind(doc) == "targets":
        raise _fail(path, "is a targets recipe (it names 'targets'), not a dataset recipe")
    dataset = doc.get("dataset")
    if dataset not in DATASETS:
        raise _fail(path, f"'dataset' must be one of {', '.join(DATASETS)}, got {dataset!r}")
    allowed = _KEYS[dataset]
    unknown = [k for k in doc if k not in _TOP and k not in allowed]
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(map(str, unknown))} for dataset {dataset} "
                          f"(known: {', '.join([*_TOP, *allowed])})")
    values: dict[str, Any] = {}
    for section, keys in allowed.items():
        block = doc.get(section) or {}
        if not isinstance(block, dict):
            raise _fail(path, f"'{section}' must be a mapping")
        for key, value in block.items():
            if key not in keys:
                raise _fail(path, f"unknown key '{section}.{key}' (known: {', '.join(keys)})")
            if not isinstance(value, keys[key]) or (keys[key] is int and isinstance(value, bool)):
                raise _fail(path, f"'{section}.{key}' must be a {keys[key].__name__}, got {value!r}")
            values[f"{section}.{key}"] = value
    return _recipe(path, doc, dataset, values)


def _recipe(path: Path, doc: dict[str, Any], dataset: str, values: dict[str, Any]) -> Recipe:
    output = doc.get("output")
    if not isinstance(output, str) or output not in available():
        raise _fail(path, f"'output' must name a schema under schemas/, got {output!r}")
    extractor = values.get("language.extractor", "auto")
    if extractor not in EXTRACTOR_CHOICES:
        raise _fail(path, f"'language.extractor' must be one of {', '.join(EXTRACTOR_CHOICES)}, got {extractor!r}")
    image_format = values.get("image.format")
    if image_format is not None and image_format not in IMAGE_FORMATS:
        raise _fail(path, f"'image.format' must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}")
    size = values.get("image.size")
    if size is not None and size < 0:
        raise _fail(path, f"'image.size' must be >= 0, got {size}")
    fit = values.get("image.fit", "longest")
    if fit not in IMAGE_FITS:
        raise _fail(path, f"'image.fit' must be one of {', '.join(IMAGE_FITS)}, got {fit!r}")
    text: dict[str, tuple[str, ...] | None] = {}
    for key in ("sections", "fallback"):
        names = values.get(f"language.{key}")
        if names is not None and not set(names) <= set(SECTION_NAMES):
            raise _fail(path, f"'language.{key}' must list report sections of {', '.join(SECTION_NAMES)}")
        text[key] = tuple(names) if names is not None else None
    views = values.get("filters.views")
    return Recipe(
        name=str(doc.get("name") or path.stem), description=str(doc.get("description") or ""), dataset=dataset,
        output=output, path=path, views=parse_views(",".join(map(str, views)) or "all") if views is not None else None,
        single_pathology=values.get("filters.single_pathology", True), image_size=size, image_format=image_format,
        image_fit=fit, extractor=extractor, sections=text["sections"], fallback=text["fallback"],
        include_uncertain=values.get("language.include_uncertain", False),
        require_mention=values.get("language.require_mention", False),
    )


# -- the sources ---------------------------------------------------------------------------------------


def positive_pathologies(labels: dict[str, Any]) -> list[str]:
    """The pathologies of the 8 whose CheXpert cell is positive (1.0; text or number)."""
    positive = []
    for name in pathologies():
        try:
            if labels.get(name) not in (None, "") and float(labels[name]) == 1.0:
                positive.append(name)
        except (TypeError, ValueError):
            continue
    return positive


def _language(recipe: str, extractor: Extractor, lut: GaussianLUT | None) -> dict[str, Any]:
    """The recipe, extractor and LUT as the manifest and dataset card show them."""
    return {"recipe": recipe, "extractor": extractor_label(extractor),
            "lut": f"grid {lut.grid}, sha256 {lut_digest(lut)}" if lut is not None else None}


@dataclass
class LdmPromptsSource(MimicSource):
    """MIMIC-CXR images of studies with exactly one of the 8 pathologies; one row per (image, prompt).

    Studies with zero or several positive pathologies are excluded up front and counted (manifest
    ``excluded``: ``not_single_pathology``, in images); the locate stage rejects the rest.
    """

    config: str = "ldm-prompts"
    schema: str = "ldm-prompts"  # type: ignore[misc]
    recipe: str = "ldm-prompts"
    single_pathology: bool = True
    extractor: Extractor = field(default_factory=RuleExtractor)
    extraction_cache: Path | None = None
    lut: GaussianLUT | None = None
    sections: tuple[str, ...] = ("findings", "impression")
    fallback: tuple[str, ...] = ("last_paragraph",)
    include_uncertain: bool = False
    image_fit: str = "longest"  # the recipe's image.fit: which side becomes image_size

    def records(self) -> list[Record]:
        records = super().records()
        self.excluded.pop("not_single_pathology", None)
        if not self.single_pathology:
            return records
        kept = [r for r in records if len(positive_pathologies(r["_raw"])) == 1]
        if excluded := len(records) - len(kept):
            self.excluded["not_single_pathology"] = excluded
        return kept

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **_language(self.recipe, self.extractor, self.lut),
                "single_pathology": self.single_pathology, "image_fit": self.image_fit}

    def stages(self) -> list[Stage]:
        *text, image = super().stages()
        image = replace(image, fit=self.image_fit)
        locate = ReportLocateStage(
            extractor=self.extractor, extraction_cache=self.extraction_cache, lut=self.lut,
            columns=tuple(load_schema(self.schema).names), include_uncertain=self.include_uncertain,
            sections=self.sections, fallback=self.fallback,
        )
        return [*text, locate, image]


@dataclass
class MsCxrLocSource(MsCxrSource):
    """MS-CXR-loc: MS-CXR phrases as ``"{location} {pathology}"`` prompts, boxes kept."""

    config: str = "ms-cxr-loc"
    schema: str = "ms-cxr-loc"  # type: ignore[misc]
    recipe: str = "ms-cxr-loc"
    extractor: Extractor = field(default_factory=RuleExtractor)
    extraction_cache: Path | None = None
    lut: GaussianLUT | None = None
    include_uncertain: bool = False
    require_mention: bool = False

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **_language(self.recipe, self.extractor, self.lut)}

    def stages(self) -> list[Stage]:
        row, image = super().stages()
        locate = PhraseLocateStage(
            extractor=self.extractor, extraction_cache=self.extraction_cache, lut=self.lut,
            columns=tuple(load_schema(self.schema).names), include_uncertain=self.include_uncertain,
            require_mention=self.require_mention,
        )
        return [row, locate, image]


@dataclass(frozen=True)
class Overrides:
    """Command-line values that replace the recipe's (None keeps the recipe's), and run-time settings."""

    views: tuple[str, ...] | None = None
    image_size: int | None = None
    image_format: str | None = None
    extractor: str | None = None
    radgraph_cache: Path | None = None
    device: str = "auto"
    extraction_cache: Path | None = None
    lut: Path | None = None


def _common(recipe: Recipe, dataset: str, o: Overrides) -> tuple[dict[str, Any], ExtractorSelection]:
    if recipe.dataset != dataset:
        raise CxrdataError(f"recipe {recipe.name} is for `cxrdata build {recipe.dataset}`, not `build {dataset}`")
    selection = select_extractor(o.extractor or recipe.extractor, o.radgraph_cache, o.device)
    kwargs: dict[str, Any] = {
        "config": recipe.output, "schema": recipe.output, "recipe": recipe.name,
        "extractor": selection.extractor, "extraction_cache": o.extraction_cache,
        "lut": read_lut(o.lut) if o.lut is not None else None, "include_uncertain": recipe.include_uncertain,
    }
    size = o.image_size if o.image_size is not None else recipe.image_size
    fmt = o.image_format or recipe.image_format
    kwargs.update({k: v for k, v in (("image_size", size), ("image_format", fmt)) if v is not None})
    return kwargs, selection


def mimic_recipe_source(recipe: Recipe, root: Path, reports_root: Path | None = None,
                        overrides: Overrides | None = None) -> tuple[LdmPromptsSource, ExtractorSelection]:
    """The source of a ``dataset: mimic`` recipe, and the extractor it chose."""
    o = overrides or Overrides()
    kwargs, selection = _common(recipe, "mimic", o)
    views = o.views if o.views is not None else recipe.views
    if views is not None:
        kwargs["views"] = views
    for key in ("sections", "fallback"):
        if getattr(recipe, key) is not None:
            kwargs[key] = getattr(recipe, key)
    source = LdmPromptsSource(root=root, reports_root=reports_root, single_pathology=recipe.single_pathology,
                              image_fit=recipe.image_fit, **kwargs)
    return source, selection


def ms_cxr_recipe_source(recipe: Recipe, root: Path, mimic_root: Path,
                         overrides: Overrides | None = None) -> tuple[MsCxrLocSource, ExtractorSelection]:
    """The source of a ``dataset: ms-cxr`` recipe, and the extractor it chose."""
    kwargs, selection = _common(recipe, "ms-cxr", overrides or Overrides())
    source = MsCxrLocSource(root=root, mimic_root=mimic_root, require_mention=recipe.require_mention, **kwargs)
    return source, selection
