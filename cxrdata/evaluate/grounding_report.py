"""The ``eval grounding`` report as the paper lays it out (tables 1 and 3), as CSV, and per record as JSON."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from rich.table import Table

from cxrdata.evaluate.bootstrap import ClassSummary
from cxrdata.evaluate.grounding_eval import GroundingReport


def _fmt(value: float, digits: int) -> str:
    return "nan" if math.isnan(value) else ("inf" if value == math.inf else "-inf" if value == -math.inf
                                              else f"{value:.{digits}f}")


def _cell(s: ClassSummary, scale: float, digits: int) -> str:
    return f"{_fmt(s.mean * scale, digits)} [{_fmt(s.ci_low * scale, digits)}, {_fmt(s.ci_high * scale, digits)}]"


def report_table(report: GroundingReport) -> Table:
    """The paper's layout (tables 1 and 3): rows = classes with N, columns CNR and mIoU (%) with 95 % CI."""
    level = f"{report.confidence:.0%}"
    table = Table(title=f"Phrase grounding on {report.config} ({', '.join(report.splits)}), {report.method}; "
                        f"mean [{level} bootstrap CI, {report.n_resamples} resamples]", title_justify="left")
    table.add_column("Classes")
    table.add_column("CNR", justify="right")
    table.add_column("mIoU (%)", justify="right")
    for row in report.rows:
        table.add_row(f"{row.name} (N={row.n})", _cell(row.cnr, 1, 2), _cell(row.miou, 100, 1))
    table.add_row("Average", _fmt(report.average_cnr, 2), _fmt(report.average_miou * 100, 1), style="bold")
    return table


CSV_COLUMNS = ("class", "n", "cnr", "cnr_ci_low", "cnr_ci_high", "miou", "miou_ci_low", "miou_ci_high", "nan_cnr")


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def write_report(report: GroundingReport, csv_path: str | Path) -> tuple[Path, Path]:
    """The table as CSV (mIoU as a fraction; last row ``Average``) and everything, per record too, as JSON
    beside it (same stem, ``.json``); non-finite numbers are written as the strings ``inf``/``nan``."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with csv_path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in report.rows:
            writer.writerow([r.name, r.n, r.cnr.mean, r.cnr.ci_low, r.cnr.ci_high,
                             r.miou.mean, r.miou.ci_low, r.miou.ci_high, r.nan_cnr])
        writer.writerow(["Average", len(report.scores), report.average_cnr, "", "", report.average_miou, "", "",
                         sum(r.nan_cnr for r in report.rows)])
    doc = {
        "config": report.config, "method": report.method, "splits": report.splits, "seed": report.seed,
        "n_resamples": report.n_resamples, "confidence": report.confidence,
        "classes": [{"class": r.name, "n": r.n, "nan_cnr": r.nan_cnr,
                     "cnr": {k: _json_number(getattr(r.cnr, k)) for k in ("mean", "ci_low", "ci_high")},
                     "miou": {k: _json_number(getattr(r.miou, k)) for k in ("mean", "ci_low", "ci_high")}}
                    for r in report.rows],
        "average": {"cnr": _json_number(report.average_cnr), "miou": _json_number(report.average_miou)},
        "skipped_no_box": report.skipped_no_box,
        "records": [{"id": s.id, "split": s.split, "class": s.class_name, "cnr": _json_number(s.cnr),
                     "miou": _json_number(s.miou)} for s in report.scores],
    }
    json_path = csv_path.with_suffix(".json")
    json_path.write_text(json.dumps(doc, indent=1) + "\n")
    return csv_path, json_path
