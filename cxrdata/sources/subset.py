"""A subset of a download, to try a real one in minutes: ``--limit N``, ``--subjects FILE``, ``--splits``.

Every dataset takes them (``build --help`` lists them under the build's own options). They select whole
partition keys (the patient: MIMIC-CXR's ``subject_id``, PadChest-GR's ``PatientID``, NIH ChestX-ray14's
patient number; VinDr-CXR's images have no patient, so its key is the ``image_id``), so a subset never
splits a patient, and what they leave out is counted in the manifest's ``excluded``, never lost silently:

* ``--splits train,test``: records of the other splits are ``split_not_selected`` (a record without a
  split is kept, so that it is rejected with its reason as in a whole build). A dataset that reads each
  split's own files (VinDr-CXR, ChestX-ray14) hands ``--splits`` to its reader instead (its options'
  ``splits``), which then does not even open the other splits' files.
* ``--subjects FILE``: partition keys, one per line (``#`` starts a comment); records of other keys are
  ``not_in_subjects``. Keys of the file that name no record are reported in one notice with their count;
  a file none of whose keys names a record stops the build with one line (a file of another dataset?).
* ``--limit N``: the first N partition keys in the order of their BLAKE2b hash: the same N on every run
  and machine, each N's keys inside every larger N's, and the splits in about their real shares (the
  hash knows nothing of splits); the other keys' records are ``beyond_limit``.

They apply in that order, after the dataset's own filters, and are recorded in the manifest's options
(the subjects file by path, SHA-256 and key count), so a build of another subset in the same ``--out``
is refused rather than mixed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxrdata.errors import CxrdataError
from cxrdata.recipe import option
from cxrdata.records import Records, keep, values

SPLIT_ALIASES = {"validate": "validation", "val": "validation", "valid": "validation", "dev": "validation"}


@dataclass(frozen=True)
class SubsetOptions:
    """``--limit``, ``--subjects``, ``--splits`` of every ``build`` (see the module docstring)."""

    limit: int | None = option(None, "Keep only the first N patients (partition keys) in a stable hashed order: the "
                               "same N on every run, each N inside a larger N (try a real download in minutes).",
                               bounds=(1, None))
    subjects: Path | None = option(None, "A text file of partition keys (patients), one per line ('#' comments): "
                                   "keep only their records.")
    splits: tuple[str, ...] | None = option(None, "Splits kept, comma-separated (train, validation, test; "
                                            "validate/val mean validation); the others are counted as excluded.")

    def __post_init__(self) -> None:
        if self.splits is not None:
            named = tuple(SPLIT_ALIASES.get(s.strip().lower(), s.strip().lower()) for s in self.splits)
            if not any(named):
                raise CxrdataError("--splits names no split")
            object.__setattr__(self, "splits", tuple(dict.fromkeys(s for s in named if s)))

    @property
    def any(self) -> bool:
        return self.limit is not None or self.subjects is not None or self.splits is not None


@dataclass(frozen=True)
class SubjectList:
    """The keys of a ``--subjects`` file, and what identifies the file in a manifest."""

    path: Path
    keys: frozenset[str]
    sha256: str

    @classmethod
    def read(cls, path: Path) -> SubjectList:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise CxrdataError(f"--subjects {path}: cannot read it ({exc.strerror or exc})") from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CxrdataError(f"--subjects {path}: not UTF-8 text (one partition key per line)") from None
        keys = frozenset(k for line in text.splitlines() if (k := line.split("#", 1)[0].strip()))
        if not keys:
            raise CxrdataError(f"--subjects {path}: holds no key (one partition key per line, '#' comments)")
        return cls(Path(path).resolve(), keys, hashlib.sha256(data).hexdigest())


def _key_order(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=8).digest()


@dataclass
class SubsetFilter:
    """The whole-dataset filter of a subset (a :class:`cxrdata.sources.base.Filter`)."""

    options: SubsetOptions
    config: str
    subjects: SubjectList | None = None
    name: str = "subset"
    found_notices: list[str] = field(default_factory=list)

    def apply(self, records: Records) -> tuple[Records, Counter[str]]:
        removed: Counter[str] = Counter()
        if self.options.splits is not None:
            wanted = set(self.options.splits)
            records = self._keep(records, [s is None or s in wanted for s in values(records, "split")], removed,
                                 "split_not_selected")
        if self.subjects is not None:
            keys = values(records, "_partition")
            present = {str(k) for k in keys}
            unknown = self.subjects.keys - present
            if unknown == self.subjects.keys:
                example = ", ".join(sorted(present)[:3]) or "none left"
                raise CxrdataError(f"--subjects {self.subjects.path}: none of its {len(unknown)} keys is a patient "
                                   f"(partition key) of {self.config} (its keys look like: {example})")
            if unknown:
                self.found_notices.append(
                    f"{self.config}: {len(unknown)} of the {len(self.subjects.keys)} keys of --subjects name no "
                    f"record (e.g. {', '.join(sorted(unknown)[:3])})")
            records = self._keep(records, [str(k) in self.subjects.keys for k in keys], removed, "not_in_subjects")
        if self.options.limit is not None:
            keys = [str(k) for k in values(records, "_partition")]
            chosen = set(sorted(set(keys), key=_key_order)[: self.options.limit])
            records = self._keep(records, [k in chosen for k in keys], removed, "beyond_limit")
        return records, removed

    @staticmethod
    def _keep(records: Records, mask: list[bool], removed: Counter[str], reason: str) -> Records:
        dropped = len(mask) - int(np.count_nonzero(mask))
        if dropped:
            removed[reason] += dropped
            return keep(records, mask)
        return records

    def notices(self) -> list[str]:
        return list(self.found_notices)


def subset_described(options: SubsetOptions, subjects: SubjectList | None) -> dict[str, Any]:
    """What the manifest's options show of a subset (nothing when there is none)."""
    shown: dict[str, Any] = {}
    if options.splits is not None:
        shown["splits"] = list(options.splits)
    if subjects is not None:
        shown["subjects"] = {"file": str(subjects.path), "sha256": subjects.sha256, "keys": len(subjects.keys)}
    if options.limit is not None:
        shown["limit"] = options.limit
    return shown
