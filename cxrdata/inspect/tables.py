"""``cxrdata stats`` as rich tables, from a statistics dict (:func:`cxrdata.io.stats.ConfigStats.to_dict`)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from cxrdata.io.stats import box_table, group_table, splits_of


def _table(title: str, header: list[str], rows: list[list[Any]], text_columns: int) -> Table:
    table = Table(title=title)
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i < text_columns else "right")
    for row in rows:
        table.add_row(*(f"{c:,}" if isinstance(c, int) else f"{c:.4f}" if isinstance(c, float) else str(c)
                        for c in row))
    return table


def stats_tables(config: str, stats: dict[str, Any]) -> list[Table]:
    """Records per split; records per split x label (x location); box measures; rejects per reason x split."""
    splits = splits_of(stats)
    tables = [_table(f"{config}: records", ["split", "records"],
                     [[s, stats["records"].get(s, 0)] for s in splits], 1)]
    if stats["groups"]["by"]:
        header, rows = group_table(stats)
        tables.append(_table(f"{config}: records per split x {' x '.join(stats['groups']['by'])}", header, rows,
                             len(stats["groups"]["by"])))
    if stats["boxes"]["count"]:
        per_split = ", ".join(f"{s} {n:,}" for s, n in stats["boxes"]["per_split"].items())
        tables.append(_table(f"{config}: {stats['boxes']['count']:,} boxes ({per_split}), [0, 1] of the original image",
                             *box_table(stats), 1))
    reject_rows = stats["rejects"]["rows"]
    if reject_rows:
        reject_splits = list(dict.fromkeys(r["split"] for r in reject_rows))
        cells: dict[str, dict[str, int]] = {}
        for r in reject_rows:
            cells.setdefault(r["reason"], {})[r["split"]] = r["records"]
        rows = [[reason, *(c.get(s, 0) for s in reject_splits), sum(c.values())] for reason, c in sorted(cells.items())]
        tables.append(_table(f"{config}: rejects per reason", ["reason", *reject_splits, "total"], rows, 1))
    return tables
