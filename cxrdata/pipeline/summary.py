"""The end-of-build summary: records per split, rejects per reason, throughput, output size."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from cxrdata.pipeline.build import BuildResult


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def print_summary(console: Console, result: BuildResult) -> None:
    """What the build did, in tables that fit 80 columns: names (configs, stages, reasons) are never cut; a
    config's reasons and stage times get tables of their own, titled by the config."""
    if result.nothing_to_do:
        console.print(f"[green]{result.out} is complete[/] (config {result.config_hash}); nothing to do.")
    elif done := sum(r.tasks_already_done for r in result.results):
        total = sum(r.tasks for r in result.results)
        console.print(f"resumed: {done} of {total} tasks were already done and kept")
    if result.rewritten:
        console.print(f"every task was already done; rewrote {' and '.join(result.rewritten)}")
    counts = Table(title="records", show_lines=False)
    counts.add_column("config", no_wrap=True)
    counts.add_column("split", no_wrap=True)
    for column in ("read", "written", "rejected"):
        counts.add_column(column, justify="right")
    for r in result.results:
        for split, c in sorted(r.totals.splits.items()):
            counts.add_row(r.config, split, str(c.read), str(c.written), str(c.rejected))
    console.print(counts)
    for r in result.results:
        reasons = Table(title=f"{r.config}: not written, by reason")
        reasons.add_column("kind", overflow="fold")
        reasons.add_column("reason", no_wrap=True)
        reasons.add_column("records", justify="right")
        for reason, n in sorted(r.excluded.items()):
            reasons.add_row("excluded (before the tasks, not read)", reason, str(n))
        for reason, n in sorted(r.totals.reasons.items()):
            reasons.add_row("rejected (rejects/)", reason, str(n))
        if reasons.row_count:
            console.print(reasons)
    if result.nothing_to_do:
        return
    for r in result.results:
        timing = Table(title=f"{r.config}: time per stage")
        timing.add_column("stage", no_wrap=True)
        for column in ("records in", "seconds", "records/s", "share"):
            timing.add_column(column, justify="right")
        total_seconds = sum(s.seconds for s in r.totals.stages.values()) or 1.0
        for stage, s in r.totals.stages.items():
            rate = s.records_in / s.seconds if s.seconds else 0.0
            timing.add_row(stage, str(s.records_in), f"{s.seconds:.2f}", f"{rate:,.0f}",
                           f"{s.seconds / total_seconds:.0%}")
        if timing.row_count:
            console.print(timing)
    read = sum(r.totals.read for r in result.results)
    ran = sum(r.tasks_run for r in result.results)
    console.print(f"{read} records in {result.seconds:.1f} s ({read / max(result.seconds, 1e-9):,.1f} records/s), "
                  f"{ran} tasks run; output {_size(result.output_bytes)} in {result.out}")
