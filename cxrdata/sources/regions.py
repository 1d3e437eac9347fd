"""The ``regions`` / ``rejected_regions`` structs shared by every grounded config (see ``schemas/``).

A region is ``{box, phrase, label, reader, source, sentence, attributes}`` with ``box`` canonical
(or None for a phrase about a region that has no box). A box that fails :func:`check_box` does not
reject its row: it goes to ``rejected_regions`` with its reason and is counted in the task's notes
as ``region_<reason>``; a small overshoot is clipped and noted as ``box_clipped``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cxrdata.boxes import check_box
from cxrdata.errors import Rejected
from cxrdata.stage import Record


def note(record: Record, name: str) -> None:
    """Count ``name`` in the task's notes (merged into the manifest)."""
    record.setdefault("_notes", []).append(name)


def region(box: Sequence[float] | None, phrase: str, label: str, source: str, reader: str | None = None,
           sentence: int | None = None, attributes: Iterable[str] = ()) -> Record:
    return {"box": None if box is None else [float(v) for v in box], "phrase": phrase, "label": label,
            "reader": reader, "source": source, "sentence": sentence, "attributes": list(attributes)}


@dataclass
class Regions:
    """Collects one record's regions and the boxes rejected on the way."""

    record: Record
    source: str
    kept: list[Record] = field(default_factory=list)
    rejected: list[Record] = field(default_factory=list)

    def box(self, make: Callable[[], Sequence[float]], label: str, reader: str | None = None) -> list[float] | None:
        """The checked canonical box that ``make()`` converts, or None once its rejection is recorded."""
        try:
            canonical, clipped = check_box(make())
        except (TypeError, ValueError, KeyError):
            reason, detail = "box_malformed", "a coordinate is missing, empty or not a number"
        except Rejected as exc:
            reason, detail = exc.reason, exc.detail
        else:
            if clipped:
                note(self.record, "box_clipped")
            return list(canonical)
        self.reject(label, reader, reason, detail)
        return None

    def reject(self, label: str, reader: str | None, reason: str, detail: str) -> None:
        """Record a box that cannot be kept (``rejected_regions``) and count ``region_<reason>``."""
        self.rejected.append({"label": label, "reader": reader, "reason": reason, "detail": detail})
        note(self.record, f"region_{reason}")

    def add(self, box: Sequence[float] | None, phrase: str, label: str, reader: str | None = None,
            sentence: int | None = None, attributes: Iterable[str] = ()) -> None:
        self.kept.append(region(box, phrase, label, self.source, reader, sentence, attributes))
