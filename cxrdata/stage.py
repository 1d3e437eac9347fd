"""The stage contract.

A stage has a name, a version, the resources it needs and a ``run`` over a batch of records.
Records are plain ``dict``s everywhere (one engine-independent format). A record that a stage
cannot process becomes a :class:`Reject`; it is never dropped silently.

Most stages work record by record: subclass :class:`RecordStage`, implement ``process`` and raise
:class:`cxrdata.errors.Rejected` for bad input; ``process`` may return several records for one
(fan-out: VinDr-CXR's one prompt row per class of an image, decoded once). Stages that need a whole
batch (a model forward pass) subclass :class:`Stage` and implement ``run`` themselves.

A stage declares the record keys it ``needs`` and ``gives`` (and the private working keys it
``drops``), so a plan can refuse, before any work, a chain whose stages miss their inputs or whose
output columns differ from the schema's (see :mod:`cxrdata.pipeline.plan`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cxrdata.errors import Rejected

Record = dict[str, Any]


@dataclass(frozen=True)
class Resources:
    """What one instance of a stage needs; engines use it to size pools and actors."""

    cpus: float = 1.0
    gpus: float = 0.0
    batch_size: int = 64


@dataclass(frozen=True)
class Reject:
    """A record that did not make it to the output, and why."""

    record_id: str
    split: str
    stage: str
    reason: str
    detail: str = ""
    notes: tuple[str, ...] = ()  # counted notes the record gathered before it was rejected (e.g. a duplicate row)


@dataclass
class Stage:
    """Base class: override ``run`` (batch) or use :class:`RecordStage`."""

    name: ClassVar[str] = "stage"
    version: ClassVar[str] = "1"
    resources: ClassVar[Resources] = Resources()
    needs: ClassVar[frozenset[str]] = frozenset()  # record keys read (public columns or ``_private`` ones)
    needs_one_of: ClassVar[tuple[frozenset[str], ...]] = ()  # ... and all keys of at least one of these sets
    gives: ClassVar[frozenset[str]] = frozenset()  # record keys added
    drops: ClassVar[frozenset[str]] = frozenset()  # record keys removed (private working data consumed)

    def setup(self) -> None:
        """Runs once per worker before the first batch (load models here, never per record)."""

    def run(self, batch: list[Record]) -> list[Record | Reject]:
        raise NotImplementedError

    def can_run_on(self, keys: frozenset[str]) -> bool:
        """Whether records holding ``keys`` give this stage what it ``needs``."""
        return self.needs <= keys and (not self.needs_one_of or any(group <= keys for group in self.needs_one_of))

    def keys_after(self, keys: frozenset[str]) -> frozenset[str]:
        """The record keys after this stage, given those before it (a plan's static check)."""
        return (keys - self.drops) | self.gives

    def reject(self, record: Record, reason: str, detail: str = "") -> Reject:
        return Reject(
            record_id=str(record.get("id", "")),
            split=str(record.get("split") or "unknown"),
            stage=self.name,
            reason=reason,
            detail=detail,
            notes=tuple(record.get("_notes", ())),
        )

    def fingerprint(self) -> str:
        """Name and version: part of the build's config hash, so a changed stage is noticed."""
        return f"{self.name}@{self.version}"


@dataclass
class RecordStage(Stage):
    """A stage that transforms one record at a time (into one record, or several: fan-out)."""

    def process(self, record: Record) -> Record | list[Record]:
        raise NotImplementedError

    def run(self, batch: list[Record]) -> list[Record | Reject]:
        out: list[Record | Reject] = []
        for record in batch:
            try:
                result = self.process(record)
            except Rejected as exc:
                out.append(self.reject(record, exc.reason, exc.detail))
                continue
            if isinstance(result, list):
                if not result:
                    raise RuntimeError(f"stage {self.name} returned no record for {record.get('id')!r}: "
                                       "a record is either kept or rejected, never dropped")
                out.extend(result)
            else:
                out.append(result)
        return out


def split_rejects(items: Iterable[Record | Reject]) -> tuple[list[Record], list[Reject]]:
    """Separate a stage's output into kept records and rejects."""
    kept, rejects = [], []
    for item in items:
        (rejects if isinstance(item, Reject) else kept).append(item)
    return kept, rejects


@dataclass
class StageChain:
    """Stages applied in order to one batch; rejects from every stage are collected."""

    stages: list[Stage] = field(default_factory=list)

    def setup(self) -> None:
        for stage in self.stages:
            stage.setup()

    def run(self, batch: list[Record]) -> tuple[list[Record], list[Reject]]:
        rejects: list[Reject] = []
        for stage in self.stages:
            if not batch:
                break
            batch, stage_rejects = split_rejects(stage.run(batch))
            rejects.extend(stage_rejects)
        return batch, rejects
