"""Targets recipes: text targets added to an existing build (``targets:`` instead of ``dataset:``).

``lofi-regions`` (SPEC "Targets for LoFi") wraps the MS-CXR, Chest ImaGenome, VinDr-CXR or PadChest-GR
source: same records and stages, plus :class:`~cxrdata.pipeline.targets_stage.RegionTargetsStage` last,
into the config and schema ``<config>-lofi-regions``. The box format is the recipe's ``box_format`` unless
``--box-format`` replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxrdata.errors import CxrdataError
from cxrdata.io.schema import available
from cxrdata.pipeline.stage import Record, Stage
from cxrdata.pipeline.targets_stage import RegionTargetsStage
from cxrdata.sources.base import InputFile
from cxrdata.sources.recipes import read_recipe
from cxrdata.targets.box_text import FORMATS

TARGETS = ("lofi-regions",)
TARGET_DATASETS = ("ms-cxr", "imagenome", "vindr", "padchest-gr")
_KEYS = ("name", "description", "targets", "box_format", "datasets")


@dataclass(frozen=True)
class TargetsRecipe:
    """A parsed, checked targets recipe."""

    name: str
    description: str
    targets: str
    box_format: str
    datasets: tuple[str, ...]
    path: Path


def load_targets_recipe(name_or_path: str | Path) -> TargetsRecipe:
    """A bundled targets recipe by name (``lofi-regions``) or a YAML file by path, checked key by key."""
    path, doc = read_recipe(name_or_path)

    def fail(message: str) -> CxrdataError:
        return CxrdataError(f"recipe {path}: {message}")

    unknown = [k for k in doc if k not in _KEYS]
    if unknown:
        raise fail(f"unknown key(s) {', '.join(map(str, unknown))} (known: {', '.join(_KEYS)})")
    targets = doc.get("targets")
    if targets not in TARGETS:
        raise fail(f"'targets' must be one of {', '.join(TARGETS)}, got {targets!r}")
    box_format = doc.get("box_format", "lofi")
    if box_format not in FORMATS:
        raise fail(f"'box_format' must be one of {', '.join(FORMATS)}, got {box_format!r}")
    datasets = doc.get("datasets", list(TARGET_DATASETS))
    if not isinstance(datasets, list) or not set(datasets) <= set(TARGET_DATASETS) or not datasets:
        raise fail(f"'datasets' must list some of {', '.join(TARGET_DATASETS)}, got {datasets!r}")
    return TargetsRecipe(name=str(doc.get("name") or path.stem), description=str(doc.get("description") or ""),
                         targets=targets, box_format=box_format, datasets=tuple(datasets), path=path)


@dataclass
class RegionTargetsSource:
    """A source with the LoFi region targets appended: config and schema ``<inner>-lofi-regions``."""

    inner: Any
    recipe: str = "lofi-regions"
    box_format: str = "lofi"

    def __post_init__(self) -> None:
        if self.box_format not in FORMATS:
            raise CxrdataError(f"unknown box format {self.box_format!r}; expected one of {', '.join(FORMATS)}")
        if self.schema not in available():
            raise CxrdataError(f"no output schema {self.schema!r} for recipe {self.recipe} "
                               f"(config {self.inner.config} has no region targets)")

    @property
    def dataset(self) -> str:
        return self.inner.dataset

    @property
    def config(self) -> str:
        return f"{self.inner.config}-{self.recipe}"

    @property
    def schema(self) -> str:
        return f"{self.inner.schema}-{self.recipe}"

    @property
    def splits(self) -> tuple[str, ...]:
        return self.inner.splits

    @property
    def root(self) -> Path:
        return self.inner.root

    @property
    def excluded(self) -> dict[str, int]:
        return getattr(self.inner, "excluded", {})

    def check(self) -> None:
        self.inner.check()

    def inputs(self) -> list[InputFile]:
        return self.inner.inputs()

    def records(self) -> list[Record]:
        return self.inner.records()

    def records_per_task(self) -> int:
        return self.inner.records_per_task()

    def stages(self) -> list[Stage]:
        return [*self.inner.stages(), RegionTargetsStage(box_format=self.box_format)]  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "recipe": self.recipe, "box_format": self.box_format}


def targets_recipe_sources(recipe: TargetsRecipe, dataset: str, sources: list[Any],
                           box_format: str | None = None) -> list[RegionTargetsSource]:
    """The sources of ``build <dataset> --recipe <targets recipe>``: each wrapped with the recipe's targets."""
    if dataset not in recipe.datasets:
        raise CxrdataError(f"recipe {recipe.name} is for `cxrdata build` {', '.join(recipe.datasets)}, "
                           f"not `build {dataset}`")
    return [RegionTargetsSource(source, recipe=recipe.targets, box_format=box_format or recipe.box_format)
            for source in sources]
