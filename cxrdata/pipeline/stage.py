"""The stage contract.

A stage has a name, a version, the resources it needs and a ``run`` over a batch of records.
Records are plain ``dict``s everywhere (one engine-independent format). A record that a stage
cannot process becomes a :class:`Reject`; it is never dropped silently.

Most stages work record by record: subclass :class:`RecordStage`, implement ``process`` and raise
:class:`cxrdata.errors.Rejected` for bad input. Stages that need a whole batch (a model forward
pass) subclass :class:`Stage` and implement ``run`` themselves.
"""

from __future__ import annotations

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

    def setup(self) -> None:
        """Runs once per worker before the first batch (load models here, never per record)."""

    def run(self, batch: list[Record]) -> list[Record | Reject]:
        raise NotImplementedError

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
    """A stage that transforms one record at a time."""

    def process(self, record: Record) -> Record:
        raise NotImplementedError

    def run(self, batch: list[Record]) -> list[Record | Reject]:
        out: list[Record | Reject] = []
        for record in batch:
            try:
                out.append(self.process(record))
            except Rejected as exc:
                out.append(self.reject(record, exc.reason, exc.detail))
        return out


def split_rejects(items: list[Record | Reject]) -> tuple[list[Record], list[Reject]]:
    """Separate a stage's output into kept records and rejects."""
    kept = [item for item in items if not isinstance(item, Reject)]
    rejects = [item for item in items if isinstance(item, Reject)]
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
