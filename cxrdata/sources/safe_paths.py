"""Ids and relative paths from annotation files that must not lead outside the dataset's root.

A root is resolved once (it may be a symlink to another disk, and so may folders inside it, e.g. a
``files/`` linked from a bigger drive); each relative path is then joined and normalised lexically,
so ``..`` cannot climb out while symlinks under the root still work when the file is opened.
"""

from __future__ import annotations

import os
from pathlib import Path

from cxrdata.errors import Rejected


def unsafe_name(value: str) -> bool:
    """True when ``value`` could name something other than one file in one folder (``..``, ``/``, ``\\``, NUL)."""
    return not value or ".." in value or value == "." or any(c in value for c in "/\\\0")


def require_safe_name(value: str, what: str) -> None:
    """Reject the record (``unsafe_id``) when ``value`` is not a plain file or folder name."""
    if unsafe_name(value):
        raise Rejected("unsafe_id", f"{what} {value!r} would name a path outside its folder")


def inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` normalised without following symlinks; None when it leaves ``root``.

    ``root`` must already be resolved (:meth:`Path.resolve`), once per build, not per record.
    """
    target = Path(os.path.normpath(root / relative))
    return target if target.is_relative_to(root) else None
