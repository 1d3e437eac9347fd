"""Chest ImaGenome silver scene graphs (FORMATS.md 3.2): reading each ``<dicom_id>_SceneGraph.json``,
from ``silver_dataset/scene_graph/`` or straight from ``silver_dataset/scene_graph.zip``, and turning its
objects and attributes into anatomy boxes and phrase regions.

A missing scene graph rejects its row with ``scene_graph_missing``, one that cannot be read (a folder
in its place, an I/O error, a damaged zip member) with ``scene_graph_unreadable`` and one that does
not parse with ``scene_graph_invalid``. Phrases contain newlines (whitespace is collapsed); a null or
non-text phrase is skipped and counted (``phrase_missing``), never written as the text "None".
"""

from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from cxrdata.boxes import from_xyxy_pixels
from cxrdata.errors import Rejected
from cxrdata.sources.imagenome_layout import ORIGINAL, SCENE_GRAPH_SUFFIX
from cxrdata.sources.regions import Regions, note
from cxrdata.stage import Record, RecordStage

CUES = ("comparison_cues", "temporal_cues", "severity_cues", "texture_cues")  # parallel to phrases, like attributes


@dataclass
class SceneGraphStage(RecordStage):
    """Loads the record's ``<dicom_id>_SceneGraph.json`` from the folder or the zip."""

    name: ClassVar[str] = "imagenome-scene-graph"
    version: ClassVar[str] = "2"
    gives: ClassVar[frozenset[str]] = frozenset({"_graph"})
    location: Path = Path()
    _zip: zipfile.ZipFile | None = field(default=None, init=False, repr=False)
    _members: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def setup(self) -> None:
        if self.location.suffix == ".zip" and self._zip is None:
            self._zip = zipfile.ZipFile(self.location)
            self._members = {PurePosixPath(n).name: n for n in self._zip.namelist() if n.endswith(SCENE_GRAPH_SUFFIX)}

    def _read(self, dicom_id: str) -> bytes:
        name = f"{dicom_id}{SCENE_GRAPH_SUFFIX}"
        if self.location.suffix != ".zip":
            try:
                return (self.location / name).read_bytes()
            except FileNotFoundError:
                raise Rejected("scene_graph_missing", f"{name} is not in {self.location}") from None
            except OSError as exc:  # a folder in its place, no permission, a link loop, an I/O error
                raise Rejected("scene_graph_unreadable", f"{name}: {exc.strerror or exc}") from None
        self.setup()
        assert self._zip is not None
        if name not in self._members:
            raise Rejected("scene_graph_missing", f"{name} is not in {self.location.name}")
        try:
            return self._zip.read(self._members[name])
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
            raise Rejected("scene_graph_unreadable",
                           f"{self._members[name]} in {self.location.name}: {type(exc).__name__}: {exc}") from None

    def process(self, record: Record) -> Record:
        data = self._read(record["id"])
        try:
            graph = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Rejected("scene_graph_invalid", f"not valid JSON: {exc}") from None
        if not isinstance(graph, dict) or not isinstance(graph.get("objects"), list) \
                or not isinstance(graph.get("attributes", []), list):
            raise Rejected("scene_graph_invalid", "not an object with 'objects' and 'attributes' lists")
        if str(graph.get("image_id", record["id"])).removesuffix(".dcm") != record["id"]:
            note(record, "scene_graph_id_mismatch")
        record["_graph"] = graph
        return record


def _at(values: Any, k: int) -> list[str]:
    """Item ``k`` of a per-phrase list of lists (missing or malformed: empty)."""
    item = values[k] if isinstance(values, list) and k < len(values) else []
    return [str(v) for v in item] if isinstance(item, list) else []


def _sentence(phrase_ids: Any, k: int) -> int | None:
    """The sentence index of ``"<study_id>|<index>"``, or None."""
    try:
        return int(str(phrase_ids[k]).rsplit("|", 1)[1])
    except (TypeError, IndexError, ValueError, KeyError):
        return None


@dataclass
class SilverRegionStage(RecordStage):
    """Scene-graph objects -> anatomy boxes; attributes -> one region per (bbox_name, phrase)."""

    name: ClassVar[str] = "imagenome-silver-regions"
    version: ClassVar[str] = "2"
    needs: ClassVar[frozenset[str]] = frozenset({"_graph", "original_width", "original_height"})
    drops: ClassVar[frozenset[str]] = frozenset({"_graph"})
    gives: ClassVar[frozenset[str]] = frozenset({"anatomy", "regions", "rejected_regions"})

    def process(self, record: Record) -> Record:
        graph = record.pop("_graph")
        width, height = record["original_width"], record["original_height"]
        anatomy = Regions(record, "imagenome-silver")
        boxes: dict[str, list[float] | None] = {}
        for obj in graph["objects"]:
            name = str(obj.get("bbox_name") or "") if isinstance(obj, dict) else ""
            if not name or name in boxes:
                note(record, "object_invalid" if not name else "object_duplicate")
                continue
            boxes[name] = anatomy.box(
                lambda obj=obj: from_xyxy_pixels(*(float(obj[k]) for k in ORIGINAL), width, height), name)
            if boxes[name] is not None:
                anatomy.add(boxes[name], name, name)
        regions: dict[tuple[str, str], Record] = {}
        for entry in graph.get("attributes", []):
            name = str(entry.get("bbox_name") or "") if isinstance(entry, dict) else ""
            phrases = entry.get("phrases") if name else None
            if not isinstance(phrases, list):
                note(record, "attribute_invalid")
                continue
            for k, raw in enumerate(phrases):
                if not isinstance(raw, str) or not raw.strip():
                    note(record, "phrase_missing")  # null or not text: never the string "None"
                    continue
                phrase = " ".join(raw.split())
                attributes = [a for key in ("attributes", *CUES) for a in _at(entry.get(key), k)]
                found = regions.get((name, phrase))
                if found is None:
                    regions[(name, phrase)] = found = {
                        "box": boxes.get(name), "phrase": phrase, "label": name, "reader": None,
                        "source": "imagenome-silver", "sentence": _sentence(entry.get("phrase_IDs"), k),
                        "attributes": []}
                found["attributes"].extend(a for a in attributes if a not in found["attributes"])
        record.update(anatomy=anatomy.kept, regions=list(regions.values()), rejected_regions=anatomy.rejected)
        return record
