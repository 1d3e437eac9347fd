"""A box dataset's class vocabulary: what its boxes may be labelled, and what each label means for seed 003.

Each dataset with boxes (VinDr-CXR, NIH ChestX-ray14) declares one, read from a YAML file beside its
reader (``cxrdata/sources/<dataset>_box_classes.yaml``), and the plan hands it to the recipe stages
(:class:`cxrdata.targets.recipe_stages.StageContext`), so the synthetic-prompt stages serve every box
dataset without knowing any of them. The YAML lists:

* ``local_labels``: the box classes, spelled as the dataset's own files spell them;
* ``aliases``: other spellings of a box class found in the files (ChestX-ray14's boxes say ``Infiltrate``
  where its image labels say ``Infiltration``), mapped to the class;
* ``image_level_labels``: labels the dataset has only per image (no boxes): asking for one is an error;
* ``default_classes``: the box classes among seed 003's 8 pathologies, in the order of its tables;
* ``pathology``: box class -> the seed-003 pathology it stands for (the prompt writes it in lower case).

``rows`` and ``column`` say where a raw record of the dataset lists its box rows and which column of a
row names its class, so a whole-dataset filter can tell which classes an image has before any decoding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from cxrdata.errors import CxrdataError
from cxrdata.yamlfiles import load_yaml


@dataclass(frozen=True)
class BoxClasses:
    """One dataset's box classes, their other spellings and their seed-003 pathologies."""

    dataset: str  # as messages name it, e.g. "VinDr-CXR"
    local_labels: tuple[str, ...]
    image_level_labels: tuple[str, ...]
    default_classes: tuple[str, ...]
    pathology: Mapping[str, str]
    rows: str  # the raw-record key holding the box rows
    column: str  # the column of a box row naming its class
    aliases: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, package: str, name: str, *, rows: str, column: str) -> BoxClasses:
        """The vocabulary in YAML file ``name`` of ``package``, checked for consistency."""
        doc = load_yaml(resources.files(package).joinpath(name).read_text())
        made = cls(dataset=str(doc["dataset"]), local_labels=tuple(doc["local_labels"]),
                   image_level_labels=tuple(doc["image_level_labels"]), default_classes=tuple(doc["default_classes"]),
                   pathology=dict(doc["pathology"]), rows=rows, column=column, aliases=dict(doc.get("aliases") or {}))
        strays = [c for c in (*made.default_classes, *made.pathology, *made.aliases.values())
                  if c not in made.local_labels]
        if strays:
            raise ValueError(f"{package}/{name}: {', '.join(strays)} not among its local_labels")
        return made

    def canonical(self, label: str) -> str:
        """A box label as the class it names (an alias becomes its class; anything else is returned as is)."""
        return self.aliases.get(label, label)

    def resolve(self, names: Iterable[str] | None) -> tuple[str, ...]:
        """Box classes in their exact spelling (matched case-insensitively, aliases too); None -> the defaults.

        An image-level label or an unknown name raises :class:`CxrdataError` listing the box classes."""
        if names is None:
            return self.default_classes
        known = {name.lower(): name for name in self.local_labels}
        known.update({alias.lower(): target for alias, target in self.aliases.items()})
        image_level = {name.lower() for name in self.image_level_labels}
        listing = f"box classes: {', '.join(self.local_labels)}"
        out: list[str] = []
        for raw in names:
            name = " ".join(str(raw).split())
            if name.lower() in image_level and name.lower() not in known:
                raise CxrdataError(f"{name!r} is an image-level {self.dataset} label without boxes; {listing}")
            if name.lower() not in known:
                raise CxrdataError(f"unknown {self.dataset} class {name!r}; {listing}")
            if known[name.lower()] not in out:
                out.append(known[name.lower()])
        if not out:
            raise CxrdataError(f"no {self.dataset} class given")
        return tuple(out)

    def pathology_of(self, class_name: str) -> str | None:
        """The seed-003 pathology a box class stands for, or None."""
        return self.pathology.get(class_name)

    def word(self, class_name: str) -> str:
        """How the class is written in a prompt: its pathology in lower case, else its own name in lower case."""
        return (self.pathology_of(class_name) or class_name).lower()

    def present(self, record: Any) -> set[str]:
        """The classes a raw record has box rows of (aliases resolved)."""
        return {self.canonical(str(row[self.column] or "")) for row in record[self.rows]}
