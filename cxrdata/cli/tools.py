"""The commands around builds: the Gaussian LUT, grounding evaluation, previews and statistics."""

from __future__ import annotations

from pathlib import Path

import click

from cxrdata.cli.common import console, friendly_errors
from cxrdata.errors import CxrdataError


@click.group("lut")
def lut_group() -> None:
    """The Gaussian lookup table of the 27 location terms (Vilouras et al. 2025, "Anatomy-Grounded Weakly
    Supervised Prompt Tuning for Chest X-ray Latent Diffusion Models"): build, show, plot."""


@lut_group.command("build")
@click.option("--imagenome", type=click.Path(path_type=Path),
              help="Chest ImaGenome root (holds gold_dataset/, or chest-imagenome-dataset-1.0.0/).")
@click.option("--sample", is_flag=True, help="Use the bundled synthetic Chest ImaGenome sample.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="LUT JSON to write.")
@click.option("--grid", type=click.IntRange(min=1), default=512, show_default=True,
              help="Side of the square grid the boxes are stretched onto.")
@click.option("--sigma-divisor", type=click.FloatRange(min=0, min_open=True), default=6.0, show_default=True,
              help="sigma = (max - min) / divisor, per axis.")
@friendly_errors
def lut_build(imagenome: Path | None, sample: bool, out: Path, grid: int, sigma_divisor: float) -> None:
    """Average the gold anatomical boxes (original pixels) per location term into diagonal Gaussians."""
    from cxrdata.anatomy.lut import write_lut
    from cxrdata.anatomy.lut_plot import lut_table
    from cxrdata.sources.imagenome_gold import build_gold_lut

    if sample and imagenome:
        raise CxrdataError("give either --imagenome or --sample, not both")
    if not sample and imagenome is None:
        raise CxrdataError("give --imagenome DIR (the Chest ImaGenome download) or --sample")
    built = build_gold_lut(_imagenome_sample() if sample else imagenome, grid, sigma_divisor)
    write_lut(built.lut, out)
    console.print(lut_table(built.lut))
    console.print(f"wrote {out}: {len(built.lut.terms)} terms from {sum(built.used_regions.values())} gold boxes "
                  f"of {len(built.gold.sizes)} images ({built.gold.rows} rows read)")
    problems = {**built.gold.problems, **built.box_problems}
    if problems:
        console.print("[yellow]not used:[/yellow] " + ", ".join(f"{k} {v}" for k, v in sorted(problems.items())))


@lut_group.command("show")
@click.argument("lut", type=click.Path(path_type=Path))
@friendly_errors
def lut_show(lut: Path) -> None:
    """Print every term: its ImaGenome regions, mu and sigma per component, and box counts."""
    from cxrdata.anatomy.lut import read_lut
    from cxrdata.anatomy.lut_plot import lut_table

    console.print(lut_table(read_lut(lut)))


@lut_group.command("plot")
@click.argument("lut", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="PNG to write.")
@friendly_errors
def lut_plot(lut: Path, out: Path) -> None:
    """Draw every Gaussian (±1σ, ±2σ) over a schematic chest, one panel per term (Vilouras et al. 2025, figure 3)."""
    from cxrdata.anatomy.lut import read_lut
    from cxrdata.anatomy.lut_plot import figure_size, plot_lut

    table = read_lut(lut)
    plot_lut(table, out)
    width, height = figure_size(len(table.terms))
    console.print(f"wrote {out} ({width}x{height} px)")


@click.group("eval")
def eval_group() -> None:
    """Evaluate model outputs against built data."""


@eval_group.command("grounding")
@click.option("--data", type=click.Path(path_type=Path), required=True,
              help="A build OUT (or its data/<config> folder) whose rows have boxes and a class.")
@click.option("--heatmaps", type=click.Path(path_type=Path), default=None,
              help="Folder of <sanitised record id>.npy heatmaps, one square 2D float32 array per record.")
@click.option("--oracle", is_flag=True, help="Score the Oracle Gaussian of each record's own boxes instead.")
@click.option("--boxes", type=click.Path(path_type=Path), default=None,
              help="Predicted boxes JSON (cxrdata-boxes/1, `predict lofi-boxes`): scores each record's box mask.")
@click.option("--config", default=None, help="Config to evaluate when OUT holds several.")
@click.option("--split", default=None, help="Only this split (default: every split).")
@click.option("--classes", default=None, help="Comma-separated classes to keep (default: all).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("grounding.csv"), show_default=True,
              help="Table CSV; the JSON (with per-record scores) goes beside it.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--resamples", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--interpolation", type=click.Choice(["nearest", "bilinear"]), default="nearest", show_default=True,
              help="Upsampling of the heatmaps to the image's short side.")
@friendly_errors
def eval_grounding(data: Path, heatmaps: Path | None, oracle: bool, boxes: Path | None, config: str | None,
                   split: str | None, classes: str | None, out: Path, seed: int, resamples: int,
                   interpolation: str) -> None:
    """CNR and mIoU per class with 95% bootstrap intervals (Vilouras et al. 2025, tables 1 and 3)."""
    from cxrdata.evaluate.grounding_eval import evaluate_grounding
    from cxrdata.evaluate.grounding_report import report_table, write_report

    names = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    report = evaluate_grounding(data, heatmaps, oracle, config, split, names, seed, resamples,
                                interpolation=interpolation, boxes=boxes)  # type: ignore[arg-type]
    console.print(report_table(report))
    if report.skipped_no_box:
        console.print(f"[yellow]{len(report.skipped_no_box)} records without a box were not scored[/yellow] "
                      f"(listed in the JSON), e.g. {report.skipped_no_box[0]}")
    csv_path, json_path = write_report(report, out)
    console.print(f"wrote {csv_path} and {json_path}")


@click.command("preview")
@click.argument("out", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--n", "n", type=click.IntRange(min=1), default=16, show_default=True, help="Records to show.")
@click.option("--config", default=None, help="Config to show (default: the build's first).")
@click.option("--split", default=None, help="Only this split.")
@click.option("--where", default=None,
              help="Row filter: 'column == value' (unquoted value compared as text; clauses joined by 'and') or a "
                   "SQL expression, e.g. \"split = 'test' AND array_length(boxes) > 1\". Never evaluated as Python.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same records.")
@click.option("--out", "png", type=click.Path(path_type=Path), default=None, help="PNG grid to write.")
@click.option("--html", "page", type=click.Path(path_type=Path), default=None,
              help="Self-contained HTML gallery to write (thumbnails inlined; filters, search, class toggles).")
@click.option("--thumbnail", type=click.IntRange(min=0), default=256, show_default=True,
              help="Longest side of the gallery's JPEG thumbnails (0: the stored image bytes as they are).")
@click.option("--lut", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="Gaussian LUT JSON (cxrdata lut build): its heatmap of each record's locations as a gallery layer.")
@click.option("--heatmaps", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="Folder of model heatmaps (<record id>.npy, as cxrdata heatmaps writes): a gallery layer.")
@friendly_errors
def preview(out: Path, n: int, config: str | None, split: str | None, where: str | None, seed: int,
            png: Path | None, page: Path | None, thumbnail: int, lut: Path | None, heatmaps: Path | None) -> None:
    """Images of a build with their boxes, Gaussians and prompts/phrases, as a PNG grid and/or an HTML gallery."""
    from cxrdata.inspect.preview import render_grid
    from cxrdata.inspect.records import choose_panels

    if png is None and page is None:
        raise CxrdataError("give --out grid.png and/or --html page.html")
    if page is None and (lut or heatmaps):
        raise CxrdataError("--lut and --heatmaps are layers of the HTML gallery: give --html page.html")
    chosen = choose_panels(out, n, config, split, where, seed)
    if png is not None:
        width, height = render_grid(chosen.panels, png).size
        console.print(f"wrote {png} ({width}x{height} px)")
    if page is not None:
        _write_gallery(chosen.panels, page, chosen.title(where, seed), thumbnail, lut, heatmaps)
    console.print(chosen.title(where, seed))


def _write_gallery(panels: list, page: Path, title: str, thumbnail: int, lut: Path | None,
                   heatmaps: Path | None) -> None:
    from functools import partial

    from cxrdata.anatomy.lut import read_lut
    from cxrdata.inspect.html import Gallery, render_html
    from cxrdata.inspect.overlays import heatmap_layer, lut_layer
    from cxrdata.models.prediction_files import heatmap_name

    if heatmaps and not any((heatmaps / heatmap_name(p.id)).is_file() for p in panels):
        raise CxrdataError(f"no heatmap in {heatmaps} for any of the {len(panels)} records shown "
                           f"(files named as cxrdata heatmaps writes them, e.g. {heatmap_name(panels[0].id)})")
    layers = ([partial(lut_layer, lut=read_lut(lut))] if lut else []) + (
        [partial(heatmap_layer, folder=heatmaps)] if heatmaps else [])
    found = render_html(panels, page, title, Gallery(tuple(layers), thumbnail))
    for kind, option in (("lut", lut), ("heatmap", heatmaps)):
        if option:
            console.print(f"{kind} layer: {found[kind]} of {len(panels)} records")
    console.print(f"wrote {page} ({page.stat().st_size / 1e6:.2f} MB)")


@click.command("stats")
@click.argument("out", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--config", default=None, help="Only this config (default: every config of the build).")
@click.option("--plot", type=click.Path(path_type=Path), default=None, help="Also write the figures (PNG) here.")
@friendly_errors
def stats(out: Path, config: str | None, plot: Path | None) -> None:
    """Records per split x label (x location), box size/position quantiles and rejects, from the shards."""
    from cxrdata.inspect.plots import write_plots
    from cxrdata.inspect.tables import stats_tables
    from cxrdata.io.layout import built_configs, read_build
    from cxrdata.io.stats import config_stats

    # every config of OUT by default (none: read_build's one line for a folder without shards)
    for name in [config] if config else list(built_configs(out)) or [None]:
        built = read_build(out, name)
        computed = config_stats(built.folder, built.rejects_dir)
        for table in stats_tables(built.name, computed.to_dict()):
            console.print(table)
        for path in write_plots(computed, built.name, plot) if plot is not None else []:
            console.print(f"wrote {path}")


def _imagenome_sample() -> Path:
    from cxrdata.api import bundled_root

    return bundled_root("imagenome")


def register(main: click.Group) -> None:
    for command in (lut_group, eval_group, preview, stats):
        main.add_command(command)
