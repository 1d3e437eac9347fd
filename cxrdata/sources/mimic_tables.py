"""MIMIC-CXR-JPG's metadata, split and CheXpert tables joined per image, duplicates sorted out.

A row repeated exactly (every cell equal) is kept once and counted in the manifest's ``excluded``
as ``<table>_row_duplicate``. Rows that share a key (metadata and split: ``dicom_id``; CheXpert:
``subject_id, study_id``) but differ are a conflict: the image they describe is kept as one record
that the row stage rejects (``metadata_conflict`` / ``split_conflict`` / ``chexpert_conflict``),
naming the columns that differ. Every metadata ``dicom_id`` thus becomes exactly one record, or
one ``view_not_selected`` exclusion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

CONFLICT = "_conflict"  # (reason, detail) of a record whose rows disagree
HAS_LABELS = "_has_labels"  # true when the study has a CheXpert row


@dataclass(frozen=True)
class Distinct:
    """A table with its identical duplicate rows dropped; ``conflicts`` maps a key to what differs."""

    rows: pl.DataFrame  # every distinct row (a conflicting key keeps all of its rows)
    conflicts: dict[tuple[Any, ...], str] = field(default_factory=dict)
    duplicates: int = 0

    def first(self, key: list[str]) -> pl.DataFrame:
        """One row per key: the first of its distinct rows."""
        if not self.conflicts:  # every key has one distinct row already
            return self.rows
        return self.rows.unique(key, keep="first", maintain_order=True)


def distinct(frame: pl.DataFrame, key: list[str], table: str) -> Distinct:
    """Drop exact duplicate rows of ``table``; describe the keys whose rows still differ.

    Only rows whose key repeats are compared whole (at MIMIC's size, a handful), so a clean table costs
    one hash of its key column."""
    if not _repeats(frame, key):
        return Distinct(frame)
    shared = frame.select(key).is_duplicated()
    indexed = frame.with_row_index("_row")
    repeated = indexed.filter(shared).filter(~pl.struct(frame.columns).is_first_distinct())["_row"]
    rows = indexed.filter(~pl.col("_row").is_in(repeated.implode())).drop("_row") if len(repeated) else frame
    clashing = rows.filter(pl.struct(key).is_duplicated())
    conflicts = {}
    for values, group in clashing.group_by(key, maintain_order=True):
        differ = [c for c in group.columns if c not in key and group[c].n_unique() > 1]
        what = ", ".join(f"{c}={v}" for c, v in zip(key, values, strict=True))
        conflicts[tuple(values)] = (f"{group.height} different rows in {table} for {what} "
                                    f"(they differ in {', '.join(differ)})")
    return Distinct(rows, conflicts, frame.height - rows.height)


def _repeats(frame: pl.DataFrame, key: list[str]) -> bool:
    """Whether some key value repeats (one column's distinct count: a fifth of the memory of a mask)."""
    if len(key) == 1:
        return frame.get_column(key[0]).n_unique() < frame.height
    return bool(frame.select(key).is_duplicated().any())


@dataclass
class JoinedTables:
    """The per-image join and what it counted (``excluded``: exclusions and dropped duplicate rows)."""

    frame: pl.DataFrame  # one row per image; CONFLICT holds [reason, detail] or null
    excluded: dict[str, int]


Load = Callable[[], pl.DataFrame]  # reads one table when its turn comes
SORT_KEY = ["subject_id", "study_id", "dicom_id"]
STUDY = ["subject_id", "study_id"]


@dataclass(frozen=True)
class Found:
    """What one table's duplicate check found: conflicting keys (key -> what differs) and dropped rows."""

    conflicts: dict[tuple[Any, ...], str]
    duplicates: int


def join_tables(metadata: Load, split: Load, labels: Load, label_names: list[str],
                views: tuple[str, ...]) -> JoinedTables:
    """One row per metadata ``dicom_id`` (selected views only), with its split and its study's labels.

    Each table is read when its turn comes and dropped once joined, and the images are sorted before the
    (order-keeping) joins: at MIMIC's size the driver holds one raw table beside the growing join, never
    all three and a sorted copy of the whole join."""
    images, meta, left_out = _images(metadata(), views)
    images, splits = _joined(images, split().select("dicom_id", "study_id", "subject_id", "split"), ["dicom_id"],
                             "split", pl.col("split").alias("split_raw"))
    images, chexpert = _joined(images, labels().select(*STUDY, *label_names), STUDY, "chexpert",
                               *label_names, pl.lit(True).alias(HAS_LABELS))
    excluded = {"metadata_row_duplicate": meta.duplicates, "split_row_duplicate": splits.duplicates,
                "chexpert_row_duplicate": chexpert.duplicates, "view_not_selected": left_out}
    conflicts = (("metadata_conflict", meta, ["dicom_id"]), ("split_conflict", splits, ["dicom_id"]),
                 ("chexpert_conflict", chexpert, STUDY))
    found = [_conflict_column(images, reason, f.conflicts, key) for reason, f, key in conflicts if f.conflicts]
    conflict = pl.coalesce(*found, pl.lit(None, pl.List(pl.String))) if found else pl.lit(None, pl.List(pl.String))
    return JoinedTables(images.with_columns(conflict.alias(CONFLICT)), {k: n for k, n in excluded.items() if n})


def _images(metadata: pl.DataFrame, views: tuple[str, ...]) -> tuple[pl.DataFrame, Found, int]:
    """One row per image whose rows name a selected view (all views when ``views`` is empty), sorted; what
    the duplicate check found; how many images no selected view names. A conflicting image is selected
    when any of its rows is (it is rejected later all the same)."""
    meta = distinct(metadata, ["dicom_id"], "metadata")
    images, left_out = meta.first(["dicom_id"]), 0
    if views:
        selected = pl.col("ViewPosition").is_in(list(views)).fill_null(False)
        if meta.conflicts:
            chosen = meta.rows.group_by("dicom_id").agg(selected.any().alias("_selected"))
            images = images.join(chosen, on="dicom_id", how="left", nulls_equal=True, maintain_order="left")
        else:
            images = images.with_columns(selected.alias("_selected"))
        left_out = int((~images["_selected"]).sum())
        images = images.filter(pl.col("_selected")).drop("_selected")
    return images.sort(SORT_KEY, nulls_last=True), Found(meta.conflicts, meta.duplicates), left_out


def _joined(images: pl.DataFrame, table: pl.DataFrame, key: list[str], name: str,
            *columns: pl.Expr | str) -> tuple[pl.DataFrame, Found]:
    """``images`` with ``columns`` of the first distinct row of ``table`` per key (null without one)."""
    rows = distinct(table, key, name)
    joined = images.join(rows.first(key).select(*key, *columns), on=key, how="left", maintain_order="left")
    return joined, Found(rows.conflicts, rows.duplicates)


def _conflict_column(joined: pl.DataFrame, reason: str, details: dict[tuple[Any, ...], str],
                     key: list[str]) -> pl.Series:
    """[reason, detail] for the rows whose key has conflicting rows in a table, else null."""
    table = pl.DataFrame([[*k, [reason, d]] for k, d in details.items()], orient="row",
                         schema={**dict.fromkeys(key, pl.String), "_c": pl.List(pl.String)})
    return joined.select(key).join(table, on=key, how="left", nulls_equal=True, maintain_order="left")["_c"]
