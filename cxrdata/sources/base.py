"""The source contract: what a dataset reader gives the pipeline.

A source finds its download's files and checks them up front (one :class:`cxrdata.errors.CxrdataError`
line for anything knowable before work starts), lists its raw records, each with a stable partition
key (``_partition``: for MIMIC the subject id, so a patient never spans tasks), declares whole-dataset
filters (:class:`Filter`, counted as ``excluded``), and places the image stage it is handed among its
own stages (VinDr-CXR's boxes need the DICOM's size, so its box stage comes after the image). It knows
no engine, no image size or format, and no recipe: the pipeline assembles a plan from the recipe.
Per-record problems are found by the stages and become rejects.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from cxrdata.imaging.stages import ImageStage
from cxrdata.records import Records
from cxrdata.stage import Stage

# Canonical split names in every output; each dataset's spellings map onto these.
SPLIT_ALIASES = {
    "train": "train",
    "validate": "validation",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "test": "test",
}
RAW_KEYS = frozenset({"id", "split", "_partition"})  # every raw record has these


def canonical_split(value: Any) -> str | None:
    """``validate``/``valid``/``val`` -> ``validation``; unknown or missing -> None."""
    if value is None:
        return None
    return SPLIT_ALIASES.get(str(value).strip().lower())


@dataclass(frozen=True)
class InputFile:
    """A file the build read: recorded in the manifest for provenance."""

    path: str
    size: int

    @classmethod
    def of(cls, path: Path, root: Path) -> InputFile:
        return cls(str(path.relative_to(root)), path.stat().st_size)


class Filter(Protocol):
    """A whole-dataset filter on raw records, before they are cut into tasks; what it removes is counted."""

    name: str

    def apply(self, records: Records) -> tuple[Records, Counter[str]]:
        """The records kept (in order) and the counts of those removed, per reason."""
        ...


class Source(Protocol):
    """A dataset reader producing one output config."""

    dataset: ClassVar[str]  # the source dataset, e.g. "mimic-cxr-jpg"
    image: ClassVar[type[ImageStage]]  # its image kind: the decoder class the pipeline configures and hands over
    config: str  # its own output config name, e.g. "mimic"
    schema: str  # its schema under schemas/
    splits: tuple[str, ...]  # canonical splits this config writes
    root: Path
    excluded: dict[str, int]  # counts of raw rows that became no record (filled by records())

    def check(self) -> None:
        """Raise CxrdataError for a missing root, file or column, before any work starts."""
        ...

    def inputs(self) -> list[InputFile]:
        """The files this build reads (for the manifest)."""
        ...

    def records(self) -> Records:
        """All raw records in a deterministic order (a list, or a :class:`~cxrdata.records.RecordFrame` for
        a large table), each with ``id``, ``split`` (canonical or None) and
        ``_partition``, plus the keys of :attr:`record_keys`."""
        ...

    def record_keys(self) -> frozenset[str]:
        """The keys of a raw record (checked against the ``needs`` of the stages)."""
        ...

    def filters(self) -> Sequence[Filter]:
        """Whole-dataset filters the options ask for (may be empty)."""
        ...

    def stages(self, image: ImageStage) -> list[Stage]:
        """Its stages, in order, with the image stage it is handed in its place."""
        ...

    def describe(self) -> dict[str, Any]:
        """Options that change the output (part of the config hash)."""
        ...

    def versions(self) -> dict[str, dict[str, str]]:
        """Which release of each dataset it read, as far as the files tell (``{dataset: {version, evidence}}``)."""
        ...

    def notices(self) -> list[str]:
        """Lines worth telling the user after the build (e.g. which of several versions was read)."""
        ...


@dataclass(frozen=True)
class DatasetEntry:
    """Everything the pipeline and the command line need to know about one dataset (its registry entry)."""

    name: str  # the command-line name: `cxrdata build NAME`
    summary: str  # one line: the `build NAME --help` text
    options: type  # its options class (cxrdata.recipe.option fields): root, companion folders, filters
    source_classes: tuple[type, ...]  # its sources (one per output config), each made from the options
    doctor: str  # "module:function(options, decode) -> list[Finding]"
    sample: str  # "module:function(out, seed=..., **sample options) -> a sample with .summary()"
    sample_options: str | None = None  # "module:Class" of the writer's own options, if any
    sample_tree: str = ""  # the bundled sample tree that holds it (default: its own name)
    sample_paths: Mapping[str, str] = field(default_factory=lambda: {"root": ""})  # path option -> place in the tree
    sample_summary: str = ""  # one line: the `sample-data NAME --help` text
    doctor_summary: str = ""  # one line: the `doctor NAME --help` text

    @property
    def tree(self) -> str:
        return self.sample_tree or self.name

    def sources(self, options: Any) -> list[Source]:
        return [cls(options) for cls in self.source_classes]

    @property
    def image_kinds(self) -> tuple[type[ImageStage], ...]:
        return tuple(dict.fromkeys(cls.image for cls in self.source_classes))
