"""Synthetic ``"{location} {class}"`` prompts for the boxes of a box dataset (seed 003, appendix B, eq. 7).

Every box becomes a diagonal Gaussian on the LUT's grid (μ = (min + max) / 2, σ = (max − min) /
divisor, the LUT's own divisor) and takes the location term of the LUT entry nearest to it by squared
2-Wasserstein distance (:func:`cxrdata.anatomy.wasserstein.match_boxes`, one vectorised call per
batch; ties go to the term listed first in vocabulary order, as documented there). Only
one-component entries are candidates unless ``include_mixtures``.

One output row per (image, class) pair, as the paper counts them (443 pairs on the test split):
its boxes, each box's location and W2² (squared LUT grid units), and the prompt, whose distinct
locations are written in vocabulary order and bound with ``<and>`` (``"left lower <and> right lower
pleural effusion"``). The class is written as its seed-003 pathology in lower case when it is one,
else as its own name in lower case: the dataset's :class:`~cxrdata.targets.box_classes.BoxClasses`
(VinDr-CXR's, ChestX-ray14's) says which, and the stages know no dataset. A Cardiomegaly box usually
lands on the "cardiomegaly" term, giving ``"cardiomegaly cardiomegaly"``: that is the method, verbatim.

Readers (VinDr-CXR): the test split has consensus boxes. In train every reader's box counts (three
readers' boxes of one class bound into one prompt) unless ``fuse`` is ``union``/``wbf``, which matches
the fused boxes instead. The rows are built by the ordinary pipeline (recipe ``vindr-prompts``: the
dataset's own image and box stages, then :class:`PerClassStage` fans each image out into one record
per selected class, so an image is decoded once however many classes it has, then
:class:`SynthPromptStage`). A pair whose boxes all fail the box check is rejected (``no_valid_box``);
images without a box of a selected class are counted in the manifest's ``excluded``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from cxrdata.anatomy.locations import order_locations
from cxrdata.anatomy.lut import GaussianLUT, lut_digest
from cxrdata.anatomy.wasserstein import match_boxes
from cxrdata.stage import Record, RecordStage, Reject, Stage
from cxrdata.targets.box_classes import BoxClasses
from cxrdata.targets.prompts import AND_TOKEN


def class_slug(class_name: str) -> str:
    """The class as a record-id part: ``"Nodule/Mass" -> "nodule-mass"``, ``"Lung Opacity" -> "lung-opacity"``."""
    return re.sub(r"[^a-z0-9]+", "-", class_name.lower()).strip("-")


def format_prompt(locations: Iterable[str], word: str) -> str:
    """``"{loc1} <and> {loc2} {word}"`` with distinct locations in vocabulary order."""
    ordered = order_locations(locations)
    if not ordered:
        raise ValueError("a prompt needs at least one location")
    return f"{f' {AND_TOKEN} '.join(ordered)} {word}"


@dataclass(frozen=True)
class SyntheticPrompt:
    """The nearest location of every box (in input order), its W2², and the prompt."""

    locations: tuple[str, ...]
    distances: tuple[float, ...]
    prompt: str


def synth_prompt(boxes: Sequence[Sequence[float]], lut: GaussianLUT, word: str,
                 include_mixtures: bool = False) -> SyntheticPrompt:
    """The synthetic prompt of one (image, class) pair from its canonical boxes; ``word`` names the class
    (:meth:`BoxClasses.word`)."""
    terms, dist = match_boxes(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), lut, include_mixtures)
    return SyntheticPrompt(tuple(terms), tuple(float(d) for d in dist), format_prompt(terms, word))


@dataclass
class PerClassStage(RecordStage):
    """One image with its regions -> one record per selected class it has a box row of (fan-out): id
    ``<record id>/<class slug>``, that class's regions, rejected regions and fused boxes (if any) only."""

    name: ClassVar[str] = "per-class"
    version: ClassVar[str] = "1"
    needs: ClassVar[frozenset[str]] = frozenset({"regions", "rejected_regions", "_classes_present"})
    gives: ClassVar[frozenset[str]] = frozenset({"_class"})
    classes: tuple[str, ...] = ()

    def process(self, record: Record) -> list[Record]:
        present = record.pop("_classes_present")
        out = []
        for class_name in self.classes:
            if class_name not in present:
                continue
            one = {**record, "id": f"{record['id']}/{class_slug(class_name)}", "_class": class_name,
                   "regions": [r for r in record["regions"] if r["label"] == class_name],
                   "rejected_regions": [r for r in record["rejected_regions"] if r["label"] == class_name]}
            if "fused_regions" in record:
                one["fused_regions"] = [f for f in record["fused_regions"] if f["label"] == class_name]
            out.append(one)
        return out


@dataclass
class SynthPromptStage(Stage):
    """A box stage's output for one (image, class) pair -> a prompt row (schema ``<config>-prompts``); the
    row keeps the schema's columns only (a dataset without readers has no ``readers`` column)."""

    name: ClassVar[str] = "synth-prompts"
    version: ClassVar[str] = "1"
    needs: ClassVar[frozenset[str]] = frozenset({"_class", "regions"})
    gives: ClassVar[frozenset[str]] = frozenset({"class_name", "pathology", "prompt", "locations", "distances",
                                                 "boxes", "readers"})
    lut: GaussianLUT | None = None
    include_mixtures: bool = False
    columns: tuple[str, ...] = ()  # the output schema's columns: the row keeps these only
    vocabulary: BoxClasses | None = None  # the dataset's box classes: how a class is written, its pathology

    def fingerprint(self) -> str:
        assert self.lut is not None
        return f"{self.name}@{self.version}:{lut_digest(self.lut)}:{self.include_mixtures}"

    def keys_after(self, keys: frozenset[str]) -> frozenset[str]:
        return frozenset(k for k in keys | self.gives if k in self.columns or k == "_notes")

    def _boxes(self, record: Record) -> tuple[list[list[float]], list[str]]:
        if record.get("_fuse", "none") != "none":  # the readers' fused boxes instead of every reader's
            fused = record["fused_regions"]
            return [list(f["box"]) for f in fused], ["+".join(f["readers"]) for f in fused]
        kept = [r for r in record["regions"] if r["box"] is not None]
        return [list(r["box"]) for r in kept], [r["reader"] for r in kept]

    def run(self, batch: list[Record]) -> list[Record | Reject]:
        assert self.lut is not None
        out: list[Record | Reject] = []
        found: list[tuple[Record, list[list[float]], list[str]]] = []
        for record in batch:
            boxes, readers = self._boxes(record)
            if boxes:
                found.append((record, boxes, readers))
            else:
                reasons = sorted({r["reason"] for r in record.get("rejected_regions", [])})
                out.append(self.reject(record, "no_valid_box",
                                       f"no usable {record['_class']} box (rejected: {', '.join(reasons) or 'none'})"))
        if not found:
            return out
        all_boxes = np.array([b for _, boxes, _ in found for b in boxes], dtype=np.float64)
        terms, dist = match_boxes(all_boxes, self.lut, self.include_mixtures)  # one vectorised call per batch
        start = 0
        for record, boxes, readers in found:
            stop = start + len(boxes)
            out.append(self._row(record, boxes, readers, terms[start:stop], dist[start:stop]))
            start = stop
        return out

    def _row(self, record: Record, boxes: list[list[float]], readers: list[str], terms: list[str],
             dist: np.ndarray) -> Record:
        assert self.vocabulary is not None
        class_name = record["_class"]
        row = {key: record[key] for key in self.columns if key in record}
        made = {"class_name": class_name, "pathology": self.vocabulary.pathology_of(class_name),
                "prompt": format_prompt(terms, self.vocabulary.word(class_name)), "locations": list(terms),
                "distances": [float(d) for d in dist], "boxes": boxes, "readers": readers}
        row.update({key: value for key, value in made.items() if key in self.columns})
        if "_notes" in record:
            row["_notes"] = record["_notes"]
        return row
