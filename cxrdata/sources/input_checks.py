"""Per-record input checks shared by the dataset readers: ids that name files, paths, duplicated rows.

An id that becomes part of a file name (``train/<image_id>.dicom``, ``<dicom_id>_SceneGraph.json``)
must name one file inside the folder it is joined to: one with a path separator, a ``..``, a NUL or
surrounding spaces is rejected ``unsafe_id`` (an empty one ``bad_id``) before any file is opened.
A root is resolved once per build (it may be a symlink to another disk, and so may folders inside it,
e.g. a ``files/`` linked from a bigger drive); a relative path from an annotation file is then joined
and normalised lexically (:func:`inside`), so ``..`` cannot climb out while links under the root
still work when the file is opened. Rows of one record that are identical in every column are kept
once and each extra copy is counted as a note; what makes two rows *conflicting* depends on the
file, so callers decide.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cxrdata.errors import Rejected
from cxrdata.sources.regions import note
from cxrdata.stage import Record

BAD_ID = "bad_id"
UNSAFE_ID = "unsafe_id"
_FORBIDDEN = ("/", "\\", "\0", "..")


def unsafe_name(value: str) -> bool:
    """True when ``value`` could name something other than one file in one folder."""
    return not value or value == "." or value != value.strip() or any(part in value for part in _FORBIDDEN)


def check_file_id(value: Any, what: str) -> str:
    """``value`` as a string if it can safely name a file, else :class:`Rejected` (``bad_id`` / ``unsafe_id``)."""
    text = "" if value is None else str(value)
    if not text.strip():
        raise Rejected(BAD_ID, f"{what} is empty")
    if unsafe_name(text):
        raise Rejected(UNSAFE_ID, f"{what} {text!r} would name a path outside its folder")
    return text


def inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` normalised without following symlinks; None when it leaves ``root``.

    ``root`` must already be resolved (:meth:`Path.resolve`), once per build, not per record.
    """
    target = Path(os.path.normpath(root / relative))
    return target if target.is_relative_to(root) else None


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
