"""MIMIC-CXR-JPG's metadata, split and CheXpert tables joined per image, duplicates sorted out.

A row repeated exactly (every cell equal) is kept once and counted in the manifest's ``excluded``
as ``<table>_row_duplicate``. Rows that share a key (metadata and split: ``dicom_id``; CheXpert:
``subject_id, study_id``) but differ are a conflict: the image they describe is kept as one record
that the row stage rejects (``metadata_conflict`` / ``split_conflict`` / ``chexpert_conflict``),
naming the columns that differ. Every metadata ``dicom_id`` thus becomes exactly one record, or
one ``view_not_selected`` exclusion.
"""

from __future__ import annotations

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
    shared = frame.select(pl.struct(key).is_duplicated()).to_series()
    if not shared.any():
        return Distinct(frame)
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


@dataclass
class JoinedTables:
    """The per-image join and what it counted (``excluded``: exclusions and dropped duplicate rows)."""

    frame: pl.DataFrame  # one row per image; CONFLICT holds [reason, detail] or null
    excluded: dict[str, int]


def join_tables(metadata: pl.DataFrame, split: pl.DataFrame, labels: pl.DataFrame, label_names: list[str],
                views: tuple[str, ...]) -> JoinedTables:
    """One row per metadata ``dicom_id`` (selected views only), with its split and its study's labels."""
    meta = distinct(metadata, ["dicom_id"], "metadata")
    splits = distinct(split.select("dicom_id", "study_id", "subject_id", "split"), ["dicom_id"], "split")
    chexpert = distinct(labels.select("subject_id", "study_id", *label_names), ["subject_id", "study_id"],
                        "chexpert")
    excluded = {f"{name}_row_duplicate": d.duplicates
                for name, d in (("metadata", meta), ("split", splits), ("chexpert", chexpert)) if d.duplicates}
    images = meta.first(["dicom_id"])
    if views:  # an image is selected when any of its rows names a selected view (a conflict is still rejected)
        selected = pl.col("ViewPosition").is_in(list(views)).fill_null(False)
        if meta.conflicts:
            chosen = meta.rows.group_by("dicom_id").agg(selected.any().alias("_selected"))
            images = images.join(chosen, on="dicom_id", how="left", nulls_equal=True, maintain_order="left")
        else:
            images = images.with_columns(selected.alias("_selected"))
        if left_out := int((~images["_selected"]).sum()):
            excluded["view_not_selected"] = left_out
        images = images.filter(pl.col("_selected")).drop("_selected")
    joined = (images
              .join(splits.first(["dicom_id"]).select("dicom_id", pl.col("split").alias("split_raw")),
                    on="dicom_id", how="left", maintain_order="left")
              .join(chexpert.first(["subject_id", "study_id"]).with_columns(pl.lit(True).alias(HAS_LABELS)),
                    on=["subject_id", "study_id"], how="left", maintain_order="left")
              .sort(["subject_id", "study_id", "dicom_id"], nulls_last=True))
    conflicts = (("metadata_conflict", meta.conflicts, ["dicom_id"]),
                 ("split_conflict", splits.conflicts, ["dicom_id"]),
                 ("chexpert_conflict", chexpert.conflicts, ["subject_id", "study_id"]))
    found = [_conflict_column(joined, reason, details, key) for reason, details, key in conflicts if details]
    conflict = pl.coalesce(*found, pl.lit(None, pl.List(pl.String))) if found else pl.lit(None, pl.List(pl.String))
    return JoinedTables(joined.with_columns(conflict.alias(CONFLICT)), excluded)


def _conflict_column(joined: pl.DataFrame, reason: str, details: dict[tuple[Any, ...], str],
                     key: list[str]) -> pl.Series:
    """[reason, detail] for the rows whose key has conflicting rows in a table, else null."""
    table = pl.DataFrame([[*k, [reason, d]] for k, d in details.items()], orient="row",
                         schema={**dict.fromkeys(key, pl.String), "_c": pl.List(pl.String)})
    return joined.select(key).join(table, on=key, how="left", nulls_equal=True, maintain_order="left")["_c"]
