"""Per-record input checks shared by the dataset readers: ids that name files, duplicated rows.

An id that becomes part of a file name (``train/<image_id>.dicom``, ``<dicom_id>_SceneGraph.json``)
must name a file inside the folder it is joined to: one with a path separator, a ``..``, a NUL or
nothing at all is rejected (``bad_id``) before any file is opened. Rows of one record that are
identical in every column are kept once and each extra copy is counted as a note (the brief's rule
for identical duplicates); what makes two rows *conflicting* depends on the file, so callers decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cxrdata.errors import Rejected
from cxrdata.pipeline.stage import Record
from cxrdata.sources.regions import note

BAD_ID = "bad_id"
_FORBIDDEN = ("/", "\\", "\0", "..")


def check_file_id(value: Any, what: str) -> str:
    """``value`` as a string if it can safely name a file, else :class:`Rejected` ``bad_id``."""
    text = "" if value is None else str(value)
    if not text.strip():
        raise Rejected(BAD_ID, f"{what} is empty")
    if text != text.strip() or any(part in text for part in _FORBIDDEN):
        raise Rejected(BAD_ID, f"{what} {text!r} would name a path outside its folder")
    return text


def unique_rows(rows: Iterable[dict[str, Any]], record: Record, note_name: str) -> list[dict[str, Any]]:
    """``rows`` in order without repeats of an identical row; each repeat counts ``note_name`` once."""
    seen: set[tuple[tuple[str, Any], ...]] = set()
    kept = []
    for row in rows:
        key = tuple(sorted(row.items()))
        if key in seen:
            note(record, note_name)
            continue
        seen.add(key)
        kept.append(row)
    return kept
