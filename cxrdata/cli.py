"""The ``cxrdata`` command line: parses options, calls the library, prints. No logic lives here."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich.console import Console

from cxrdata import __version__
from cxrdata.errors import CxrdataError
from cxrdata.extract.select import EXTRACTOR_CHOICES
from cxrdata.pipeline import interrupts
from cxrdata.pipeline.build import BuildOptions, build
from cxrdata.pipeline.summary import print_summary
from cxrdata.sources.fusion import FUSE_MODES

# Input and output folders are resolved (absolute, links followed) at parse time, so a configuration hash
# does not depend on how a path was spelled and stored image paths load from any working directory.
INPUT_PATH = click.Path(path_type=Path, resolve_path=True)

# Tables are wide: when output is captured (not a terminal), do not squeeze them to 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=160)


def error_line(message: str, status: int) -> None:
    """Print one red ``error:`` line and exit with ``status``."""
    click.secho("error: ", fg="red", bold=True, err=True, nl=False)
    click.echo(message, err=True)
    sys.exit(status)


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A CxrdataError becomes one red line and exit status 2; Ctrl-C or SIGTERM one line and 130 / 143."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CxrdataError as exc:
            error_line(str(exc), 2)
        except KeyboardInterrupt:
            click.echo("stopped; rerun the same command to resume", err=True)
            sys.exit(128 + interrupts.stopped_by())

    return wrapper


def build_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every ``build`` command."""
    options = [
        click.option("--out", type=INPUT_PATH, required=True,
                     help="Output folder (new, empty, or a previous cxrdata build to resume)."),
        click.option("--workers", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default=True,
                     help="Worker processes of the local engine; CPUs of the local Ray runtime."),
        click.option("--tasks", type=click.IntRange(min=1), default=None,
                     help="Number of tasks (= shards per split); default: from the number of records."),
        click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                     help="local: a process pool; ray: Ray Data (pip install 'cxrdata[ray]'), see docs/cluster.md."),
        click.option("--ray-address", default=None,
                     help="With --engine ray: the cluster to join (host:port, or 'auto'); default: a local runtime."),
        click.option("--overwrite", is_flag=True,
                     help="Delete what a previous build wrote in --out (and nothing else) and start over."),
        click.option("--max-reject-share", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
                     help="Fail the build (exit 1, after writing manifest and rejects) when a config rejects more "
                          "than this share of what it read."),
        click.option("--quiet", is_flag=True, help="No progress bars or summary."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def image_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--image-size", type=click.IntRange(min=0), default=512, show_default=True,
                     help="Longest side of stored images (aspect kept); 0 keeps the original bytes."),
        click.option("--image-format", type=click.Choice(["jpeg", "png", "path"]), default="jpeg",
                     show_default=True, help="Re-encode as JPEG or PNG, or store only a path reference."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


dicom_display_option = click.option(
    "--dicom-display", type=click.Choice(["stretch", "window"]), default="stretch", show_default=True,
    help="stretch: VOI window then min-max to 0-255 (the published VinDr readers); window: strict PS3.3 window.")

RECIPE_ONLY = ("extractor", "radgraph_cache", "device", "extraction_cache", "lut")


def recipe_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--recipe`` and the language stage's options (they apply only with a recipe)."""
    options = [
        click.option("--recipe", default=None,
                     help="Build a recipe: a name under recipes/ (ldm-prompts, ms-cxr-loc, lofi-regions) or a YAML "
                          "file."),
        click.option("--extractor", type=click.Choice(EXTRACTOR_CHOICES), default=None,
                     help="Entity extractor; default: the recipe's (auto: RadGraph-XL when its weights are in "
                          "--radgraph-cache, else the rules)."),
        click.option("--radgraph-cache", type=click.Path(path_type=Path), default=None,
                     help="Folder holding radgraph-xl/ (config.json, vocabulary/, weights.th); default: radgraph's."),
        click.option("--device", default="auto", show_default=True, help="RadGraph device: auto, cpu, cuda, cuda:N."),
        click.option("--extraction-cache", type=click.Path(path_type=Path), default=None,
                     help="SQLite cache of extractor results (reusable across builds); "
                          "default: OUT/cache/extract.sqlite."),
        click.option("--lut", type=click.Path(path_type=Path), default=None,
                     help="Gaussian LUT JSON: adds each location's Gaussian (gaussians, lut_grid columns)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def targets_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--box-format`` of a targets recipe (lofi-regions)."""
    from cxrdata.targets.box_text import FORMATS

    return click.option("--box-format", type=click.Choice(FORMATS), default=None,
                        help="Box text format of a targets recipe (lofi-regions); default: the recipe's (lofi).")(fn)


def with_targets(recipe: str | None, box_format: str | None, dataset: str, sources: list[Any]) -> list[Any]:
    """The sources, wrapped by a targets recipe (``--recipe lofi-regions``) when one is given."""
    if recipe is None:
        if box_format is not None:
            raise CxrdataError("--box-format applies only with a targets --recipe (lofi-regions)")
        return sources
    from cxrdata.sources.recipes import recipe_kind
    from cxrdata.sources.targets_recipe import load_targets_recipe, targets_recipe_sources

    if recipe_kind(recipe) != "targets":
        raise CxrdataError(f"recipe {recipe} is not a targets recipe; `build {dataset}` takes targets recipes "
                           "(lofi-regions)")
    return targets_recipe_sources(load_targets_recipe(recipe), dataset, sources, box_format)


def recipe_overrides(out: Path, **values: Any) -> Any:
    """The options given on the command line, which replace the recipe's values (defaults do not)."""
    from cxrdata.sources.recipes import Overrides

    ctx = click.get_current_context()
    given = {k: v for k, v in values.items() if ctx.get_parameter_source(k) is not ParameterSource.DEFAULT}
    given["extraction_cache"] = values.get("extraction_cache") or out / "cache" / "extract.sqlite"
    return Overrides(**given)


def refuse_recipe_options() -> None:
    """Language options without --recipe would be ignored: refuse them."""
    ctx = click.get_current_context()
    given = [k for k in RECIPE_ONLY if ctx.get_parameter_source(k) is not ParameterSource.DEFAULT]
    if given:
        names = ", ".join("--" + k.replace("_", "-") for k in given)
        raise CxrdataError(f"{names} apply only with --recipe")


def print_extractor(selection: Any, quiet: bool) -> None:
    if not quiet:
        console.print(f"extractor: {selection.label} ({selection.requested}: {selection.reason})")


def run_build(sources: list[Any], out: Path, workers: int, tasks: int | None, engine: str,
              overwrite: bool, quiet: bool, max_reject_share: float = 0.5, ray_address: str | None = None) -> None:
    options = BuildOptions(out=out, workers=workers, tasks=tasks, overwrite=overwrite, quiet=quiet, engine=engine,
                           address=ray_address, max_reject_share=max_reject_share)
    result = build(sources, options)
    if not quiet:
        print_summary(console, result)
        for source in sources:  # e.g. which MS-CXR version was read; a targets recipe wraps its source
            for line in getattr(getattr(source, "inner", source), "notices", list)():
                console.print(line)
    if result.problems:
        error_line("; ".join(result.problems) + " (manifest, card and rejects were written)", 1)


def sample_root(dataset: str) -> Path:
    from cxrdata.sample.bundled import bundled_root

    return bundled_root(dataset)


@click.group()
@click.version_option(__version__, prog_name="cxrdata")
def main() -> None:
    """Turn raw chest X-ray downloads into clean, typed, sharded Parquet datasets."""
    interrupts.install()


@main.group("build")
def build_group() -> None:
    """Build a dataset into OUT (resumable: rerun the same command to finish a killed build)."""


@build_group.command("mimic")
@click.option("--root", type=INPUT_PATH, help="MIMIC-CXR-JPG root (holds files/ and the CSVs).")
@click.option("--sample", is_flag=True, help="Build the bundled synthetic sample instead of --root.")
@click.option("--reports-root", type=INPUT_PATH, default=None,
              help="Folder holding the unzipped reports' files/ tree; default: --root.")
@click.option("--views", default="PA,AP", show_default=True, help="ViewPositions to keep, comma-separated, or 'all'.")
@image_options
@recipe_options
@build_options
@friendly_errors
def build_mimic(root: Path | None, sample: bool, reports_root: Path | None, views: str, image_size: int,
                image_format: str, recipe: str | None, extractor: str | None, radgraph_cache: Path | None,
                device: str, extraction_cache: Path | None, lut: Path | None, **kwargs: Any) -> None:
    """MIMIC-CXR-JPG images with split, CheXpert labels and report sections (or a recipe's prompts)."""
    from cxrdata.sources.mimic import MimicSource, parse_views

    root = _root_or_sample(root, sample, "mimic")
    kept = parse_views(views)
    if recipe is not None:
        from cxrdata.sources.recipes import load_recipe, mimic_recipe_source

        overrides = recipe_overrides(kwargs["out"], views=kept, image_size=image_size, image_format=image_format,
                                     extractor=extractor, radgraph_cache=radgraph_cache, device=device,
                                     extraction_cache=extraction_cache, lut=lut)
        recipe_source, selection = mimic_recipe_source(load_recipe(recipe), root, reports_root, overrides)
        print_extractor(selection, kwargs["quiet"])
        run_build([recipe_source], **kwargs)
        return
    refuse_recipe_options()
    source = MimicSource(root=root, reports_root=reports_root, views=kept, image_size=image_size,
                         image_format=image_format)
    run_build([source], **kwargs)


@build_group.command("ms-cxr")
@click.option("--root", type=INPUT_PATH,
              help="MS-CXR project folder (holding 0.1/ and 1.1.0/: the newest is read), a version folder, or the CSV.")
@click.option("--mimic-root", type=INPUT_PATH, help="MIMIC-CXR-JPG root holding the images.")
@click.option("--sample", is_flag=True, help="Build the bundled synthetic sample (MS-CXR 1.1.0).")
@image_options
@recipe_options
@targets_options
@build_options
@friendly_errors
def build_ms_cxr(root: Path | None, mimic_root: Path | None, sample: bool, image_size: int, image_format: str,
                 recipe: str | None, extractor: str | None, radgraph_cache: Path | None, device: str,
                 extraction_cache: Path | None, lut: Path | None, box_format: str | None, **kwargs: Any) -> None:
    """MS-CXR phrases and boxes on MIMIC-CXR-JPG images (v1.0.0 or v1.1.0, from the header)."""
    from cxrdata.sources.ms_cxr import MsCxrSource
    from cxrdata.sources.recipes import recipe_kind

    if sample:
        mimic_root = sample_root("mimic")
        root = mimic_root / "ms-cxr"  # the project folder: 0.1/ and 1.1.0/
    if root is None or mimic_root is None:
        raise CxrdataError("give --root and --mimic-root, or --sample")
    if recipe is not None and recipe_kind(recipe) == "dataset":
        from cxrdata.sources.recipes import load_recipe, ms_cxr_recipe_source

        if box_format is not None:
            raise CxrdataError("--box-format applies only with a targets --recipe (lofi-regions)")

        overrides = recipe_overrides(kwargs["out"], image_size=image_size, image_format=image_format,
                                     extractor=extractor, radgraph_cache=radgraph_cache, device=device,
                                     extraction_cache=extraction_cache, lut=lut)
        recipe_source, selection = ms_cxr_recipe_source(load_recipe(recipe), root, mimic_root, overrides)
        print_extractor(selection, kwargs["quiet"])
        run_build([recipe_source], **kwargs)
        return
    refuse_recipe_options()
    source = MsCxrSource(root=root, mimic_root=mimic_root, image_size=image_size, image_format=image_format)
    run_build(with_targets(recipe, box_format, "ms-cxr", [source]), **kwargs)



@build_group.command("vindr")
@click.option("--root", type=INPUT_PATH, help="VinDr-CXR root (holds annotations/, train/, test/).")
@click.option("--sample", is_flag=True, help="Build the bundled synthetic sample instead of --root.")
@click.option("--fuse", type=click.Choice(FUSE_MODES), default="none", show_default=True,
              help="Add a fused view of the readers' boxes beside the raw ones (never replaces them).")
@click.option("--iou", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.1, show_default=True,
              help="Boxes of one label overlapping more than this are fused.")
@image_options
@dicom_display_option
@click.option("--recipe", default=None, help="A targets recipe (lofi-regions) or a YAML file.")
@targets_options
@build_options
@friendly_errors
def build_vindr(root: Path | None, sample: bool, fuse: str, iou: float, image_size: int, image_format: str,
                dicom_display: str, recipe: str | None, box_format: str | None, **kwargs: Any) -> None:
    """VinDr-CXR DICOMs with every reader's boxes and image-level labels (train and test)."""
    from cxrdata.sources.vindr import VindrSource

    source = VindrSource(root=_root_or_sample(root, sample, "vindr"), fuse=fuse, iou=iou, image_size=image_size,
                         image_format=image_format, dicom_display=dicom_display)
    run_build(with_targets(recipe, box_format, "vindr", [source]), **kwargs)


@build_group.command("padchest-gr")
@click.option("--root", type=INPUT_PATH,
              help="PadChest-GR root (grounded_reports_*.json, master_table.csv, PadChest_GR/).")
@click.option("--sample", is_flag=True, help="Build the bundled synthetic sample instead of --root.")
@image_options
@click.option("--recipe", default=None, help="A targets recipe (lofi-regions) or a YAML file.")
@targets_options
@build_options
@friendly_errors
def build_padchest_gr(root: Path | None, sample: bool, image_size: int, image_format: str, recipe: str | None,
                      box_format: str | None, **kwargs: Any) -> None:
    """PadChest-GR 16-bit PNGs with grounded sentences (en + es) and both readers' boxes."""
    from cxrdata.sources.padchest_gr import PadchestGrSource

    source = PadchestGrSource(root=_root_or_sample(root, sample, "padchest-gr"), image_size=image_size,
                              image_format=image_format)
    run_build(with_targets(recipe, box_format, "padchest-gr", [source]), **kwargs)


@build_group.command("imagenome")
@click.option("--root", type=INPUT_PATH,
              help="Chest ImaGenome root (holds gold_dataset/ and silver_dataset/), or the folder above it.")
@click.option("--mimic-root", type=INPUT_PATH, help="MIMIC-CXR-JPG root holding the images.")
@click.option("--sample", is_flag=True, help="Build the bundled synthetic sample (on its own MIMIC-CXR-JPG sample).")
@image_options
@click.option("--recipe", default=None, help="A targets recipe (lofi-regions) or a YAML file.")
@targets_options
@build_options
@friendly_errors
def build_imagenome(root: Path | None, mimic_root: Path | None, sample: bool, image_size: int, image_format: str,
                    recipe: str | None, box_format: str | None, **kwargs: Any) -> None:
    """Chest ImaGenome in two configs: imagenome-gold (gold boxes) and imagenome-silver (scene graphs)."""
    from cxrdata.sources.imagenome import imagenome_sources

    if sample:
        root = _root_or_sample(root, sample, "imagenome")
        mimic_root = mimic_root or root / "mimic-cxr-jpg"  # where the sample writer puts its MIMIC tree
    if root is None or mimic_root is None:
        raise CxrdataError("give --root and --mimic-root, or --sample")
    sources = imagenome_sources(root, mimic_root, image_size=image_size, image_format=image_format)
    run_build(with_targets(recipe, box_format, "imagenome", sources), **kwargs)

def _root_or_sample(root: Path | None, sample: bool, dataset: str) -> Path:
    if sample and root:
        raise CxrdataError("give either --root or --sample, not both")
    if sample:
        return sample_root(dataset)
    if root is None:
        raise CxrdataError("give --root DIR (the dataset's download) or --sample")
    return root


@main.group("sample-data")
def sample_group() -> None:
    """Write small synthetic datasets in the exact on-disk formats of the real ones."""


@sample_group.command("mimic")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--subjects", type=click.IntRange(min=1), default=12, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@friendly_errors
def sample_mimic(out: Path, subjects: int, seed: int) -> None:
    """MIMIC-CXR-JPG + reports + MS-CXR (v1.0.0 and v1.1.0 CSV/JSON)."""
    from cxrdata.sample.mimic import write_mimic_sample

    written = write_mimic_sample(out, subjects=subjects, seed=seed)
    console.print(f"wrote {written.images} images of {written.studies} studies of {written.subjects} subjects "
                  f"to {out}")


@sample_group.command("vindr")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@friendly_errors
def sample_vindr(out: Path, seed: int) -> None:
    """VinDr-CXR 1.0.0: DICOMs (MONOCHROME1/2, RLE, JPEG 2000, VOI LUT...) and the annotation CSVs."""
    from cxrdata.sample.vindr import write_vindr_sample

    written = write_vindr_sample(out, seed=seed)
    console.print(f"wrote {len(written.train_ids)} train and {len(written.test_ids)} test DICOMs to {out}")


@sample_group.command("padchest-gr")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ids/--no-ids", default=True, show_default=True,
              help="Records with StudyID/ImageID, or without (a real copy has none: paired by order).")
@click.option("--nested", is_flag=True, help="Padchest_GR_files/PadChest_GR/ and the prior studies nested twice.")
@friendly_errors
def sample_padchest_gr(out: Path, seed: int, ids: bool, nested: bool) -> None:
    """PadChest-GR: 16-bit PNGs, grounded_reports JSON and master_table.csv."""
    from cxrdata.sample.padchest_gr import write_padchest_gr_sample

    written = write_padchest_gr_sample(out, seed=seed, ids=ids, nested=nested)
    console.print(f"wrote {len(written.study_ids)} studies ({written.positive_sentences} positive and "
                  f"{written.negative_sentences} negative sentences) to {out}")


@sample_group.command("imagenome")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@friendly_errors
def sample_imagenome(out: Path, seed: int) -> None:
    """Chest ImaGenome 1.0.0 (gold CSVs, silver scene graphs and splits) on a MIMIC-CXR-JPG sample."""
    from cxrdata.sample.imagenome import write_imagenome_sample

    written = write_imagenome_sample(out, seed=seed)
    console.print(f"wrote {len(written.gold_ids)} gold images and {len(written.scene_graph_ids)} scene graphs to "
                  f"{written.root}, on the MIMIC-CXR-JPG sample in {written.mimic_root}")

@main.group("doctor")
def doctor_group() -> None:
    """Check a download: what is present, missing or malformed, and how to fix it."""


@doctor_group.command("mimic")
@click.option("--root", type=INPUT_PATH, required=True)
@click.option("--reports-root", type=INPUT_PATH, default=None)
@friendly_errors
def doctor_mimic(root: Path, reports_root: Path | None) -> None:
    """MIMIC-CXR-JPG (+ reports)."""
    from cxrdata.sources.doctor import diagnose_mimic, print_findings

    findings = diagnose_mimic(root, reports_root)
    print_findings(console, findings)
    if any(f.level == "error" for f in findings):
        sys.exit(1)


@main.group("lut")
def lut_group() -> None:
    """The Gaussian lookup table of the 27 location terms (seed 003): build, show, plot."""


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
    built = build_gold_lut(sample_root("imagenome") if sample else imagenome, grid, sigma_divisor)
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
    """Draw every Gaussian (±1σ, ±2σ) over a schematic chest, one panel per term (seed 003, figure 3)."""
    from cxrdata.anatomy.lut import read_lut
    from cxrdata.anatomy.lut_plot import figure_size, plot_lut

    table = read_lut(lut)
    plot_lut(table, out)
    width, height = figure_size(len(table.terms))
    console.print(f"wrote {out} ({width}x{height} px)")


@main.group("synth-prompts")
def synth_group() -> None:
    """Synthetic '{location} {class}' prompts for boxes, from the Gaussian LUT (seed 003, appendix B)."""


@synth_group.command("vindr")
@click.option("--root", type=INPUT_PATH, help="VinDr-CXR root (holds annotations/, train/, test/).")
@click.option("--sample", is_flag=True, help="Use the bundled synthetic VinDr-CXR sample instead of --root.")
@click.option("--lut", "lut_path", type=click.Path(path_type=Path), required=True, help="LUT JSON (cxrdata lut build).")
@click.option("--classes", default=None,
              help="Comma-separated VinDr box classes; default: those among seed 003's 8 pathologies.")
@click.option("--split", "splits", type=click.Choice(["train", "test"]), multiple=True, default=("test",),
              show_default=True, help="Splits to use (repeat for both); the paper uses test.")
@click.option("--fuse", type=click.Choice(FUSE_MODES), default="none", show_default=True,
              help="Match the readers' fused boxes instead of every reader's box.")
@click.option("--iou", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.1, show_default=True,
              help="Boxes of one class overlapping more than this are fused.")
@click.option("--include-mixtures", is_flag=True,
              help="Let boxes match the bilateral mixtures too (through their moment-matched Gaussian).")
@image_options
@dicom_display_option
@build_options
@friendly_errors
def synth_vindr(root: Path | None, sample: bool, lut_path: Path, classes: str | None, splits: tuple[str, ...],
                fuse: str, iou: float, include_mixtures: bool, image_size: int, image_format: str,
                dicom_display: str, **kwargs: Any) -> None:
    """One row per VinDr-CXR (image, class): its boxes, their nearest LUT locations (W2²) and the prompt."""
    from cxrdata.targets.synth_prompts import VindrPromptSource

    names = tuple(c.strip() for c in classes.split(",") if c.strip()) if classes is not None else ()
    if classes is not None and not names:
        raise CxrdataError("--classes is empty")
    source = VindrPromptSource(root=_root_or_sample(root, sample, "vindr"), lut_path=lut_path, classes=names,
                               splits=splits, image_size=image_size, image_format=image_format, fuse=fuse, iou=iou,
                               include_mixtures=include_mixtures, dicom_display=dicom_display)
    run_build([source], **kwargs)


@main.group("eval")
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
    """CNR and mIoU per class with 95% bootstrap intervals (seed 003, tables 1 and 3)."""
    from cxrdata.evaluate.grounding_eval import evaluate_grounding, report_table, write_report

    names = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    report = evaluate_grounding(data, heatmaps, oracle, config, split, names, seed, resamples,
                                interpolation=interpolation, boxes=boxes)  # type: ignore[arg-type]
    console.print(report_table(report))
    if report.skipped_no_box:
        console.print(f"[yellow]{len(report.skipped_no_box)} records without a box were not scored[/yellow] "
                      f"(listed in the JSON), e.g. {report.skipped_no_box[0]}")
    csv_path, json_path = write_report(report, out)
    console.print(f"wrote {csv_path} and {json_path}")


@main.command("preview")
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
              help="Self-contained HTML page to write (images inlined).")
@friendly_errors
def preview(out: Path, n: int, config: str | None, split: str | None, where: str | None, seed: int,
            png: Path | None, page: Path | None) -> None:
    """Images of a build with their boxes, Gaussians and prompts/phrases, as a PNG grid and/or an HTML page."""
    from cxrdata.inspect.html import render_html
    from cxrdata.inspect.preview import render_grid
    from cxrdata.inspect.records import choose_panels

    if png is None and page is None:
        raise CxrdataError("give --out grid.png and/or --html page.html")
    chosen = choose_panels(out, n, config, split, where, seed)
    if png is not None:
        width, height = render_grid(chosen.panels, png).size
        console.print(f"wrote {png} ({width}x{height} px)")
    if page is not None:
        render_html(chosen.panels, page, chosen.title(where, seed))
        console.print(f"wrote {page}")
    console.print(chosen.title(where, seed))


@main.command("stats")
@click.argument("out", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--config", default=None, help="Only this config (default: every config of the build).")
@click.option("--plot", type=click.Path(path_type=Path), default=None, help="Also write the figures (PNG) here.")
@friendly_errors
def stats(out: Path, config: str | None, plot: Path | None) -> None:
    """Records per split x label (x location), box size/position quantiles and rejects, from the shards."""
    from cxrdata.inspect.plots import write_plots
    from cxrdata.inspect.shards import config_names
    from cxrdata.inspect.tables import stats_tables
    from cxrdata.io.stats import config_stats

    names = config_names(out)
    if config is not None and config not in names:
        raise CxrdataError(f"no config {config!r} in {out}; it has: {', '.join(names)}")
    for name in [config] if config else names:
        computed = config_stats(out / "data" / name, out / "rejects" / name)
        for table in stats_tables(name, computed.to_dict()):
            console.print(table)
        for path in write_plots(computed, name, plot) if plot is not None else []:
            console.print(f"wrote {path}")


def _doctor_report(findings: list[Any], title: str) -> None:
    from cxrdata.sources.doctor import has_errors, print_findings

    print_findings(console, findings, title)
    if has_errors(findings):
        sys.exit(1)


DECODE_OPTION = click.option("--decode", type=click.IntRange(min=0), default=20, show_default=True,
                             help="Image files to decode, spread over the download.")


@doctor_group.command("ms-cxr")
@click.option("--root", type=INPUT_PATH, required=True,
              help="Folder with MS_CXR_Local_Alignment_v*.csv, or the CSV.")
@click.option("--mimic-root", type=INPUT_PATH, default=None, help="MIMIC-CXR-JPG root (images).")
@DECODE_OPTION
@friendly_errors
def doctor_ms_cxr(root: Path, mimic_root: Path | None, decode: int) -> None:
    """MS-CXR (+ the MIMIC-CXR-JPG images it points to)."""
    from cxrdata.sources.doctor import diagnose_ms_cxr

    _doctor_report(diagnose_ms_cxr(root, mimic_root, decode), "doctor ms-cxr")


@doctor_group.command("imagenome")
@click.option("--root", type=INPUT_PATH, required=True,
              help="Chest ImaGenome root (holds gold_dataset/ and silver_dataset/), or the folder above it.")
@click.option("--mimic-root", type=INPUT_PATH, default=None, help="MIMIC-CXR-JPG root (images).")
@DECODE_OPTION
@friendly_errors
def doctor_imagenome(root: Path, mimic_root: Path | None, decode: int) -> None:
    """Chest ImaGenome 1.0.0 (+ the MIMIC-CXR-JPG images it lists)."""
    from cxrdata.sources.doctor import diagnose_imagenome

    _doctor_report(diagnose_imagenome(root, mimic_root, decode), "doctor imagenome")


@doctor_group.command("vindr")
@click.option("--root", type=INPUT_PATH, required=True,
              help="VinDr-CXR root (holds annotations/, train/, test/).")
@DECODE_OPTION
@friendly_errors
def doctor_vindr(root: Path, decode: int) -> None:
    """VinDr-CXR 1.0.0."""
    from cxrdata.sources.doctor import diagnose_vindr

    _doctor_report(diagnose_vindr(root, decode), "doctor vindr")


@doctor_group.command("padchest-gr")
@click.option("--root", type=INPUT_PATH, required=True,
              help="PadChest-GR root (grounded_reports_*.json, master_table.csv, PadChest_GR/).")
@DECODE_OPTION
@friendly_errors
def doctor_padchest_gr(root: Path, decode: int) -> None:
    """PadChest-GR."""
    from cxrdata.sources.doctor import diagnose_padchest_gr

    _doctor_report(diagnose_padchest_gr(root, decode), "doctor padchest-gr")


# -- train lofi / eval retrieval / predict lofi-boxes (cxrdata.train.lofi; needs the [train] extra) ----------------
@main.group("train")
def train_group() -> None:
    """Train the models that consume cxrdata shards (GPU when present; resumable)."""


@train_group.command("lofi")
@click.option("--data", "data", type=click.Path(path_type=Path), multiple=True, required=False,
              help="A build OUT holding the recipe's configs (repeat for several; default with --resume: the run's).")
@click.option("--run", "--run-dir", "run", type=click.Path(path_type=Path), required=True,
              help="Run folder (checkpoints, metrics); under torchrun spell it --run-dir (torchrun claims --run).")
@click.option("--recipe", default=None, help="lofi (default), lofi-tiny (default with --tiny) or a YAML file.")
@click.option("--vision", type=click.Path(path_type=Path), default=None,
              help="Local SigLIP2 folder (transformers format), e.g. siglip2-so400m-patch16-512, or a Hub id "
                   "already in the local Hugging Face cache (nothing is downloaded).")
@click.option("--text", type=click.Path(path_type=Path), default=None,
              help="Local SigLIP text tower folder; default: --vision (a full SiglipModel).")
@click.option("--llm", type=click.Path(path_type=Path), default=None,
              help="Local causal LM folder with its tokenizer, e.g. gemma-3-270m (or a cached Hub id).")
@click.option("--tiny", is_flag=True, help="Tiny random towers written to RUN/weights (CPU tests, no weights needed).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Stop after this global step (the learning-rate schedule is unchanged).")
@click.option("--resume", is_flag=True, help="Continue RUN from its latest checkpoint, exactly.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--seed", type=int, default=None, help="Replace the recipe's seed (new runs only).")
@click.option("--quiet", is_flag=True, help="No per-step lines.")
@friendly_errors
def train_lofi_cmd(data: tuple[Path, ...], run: Path, recipe: str | None, vision: Path | None, text: Path | None,
                   llm: Path | None, tiny: bool, max_steps: int | None, resume: bool, device: str, seed: int | None,
                   quiet: bool) -> None:
    """LoFi: sigmoid + report captioning + location-aware captioning (SPEC "Trainers").

    \b
    Several GPUs (torch DDP; the global batch is split over the processes):
      torchrun --standalone --nproc_per_node N -m cxrdata.cli train lofi --data OUT --run-dir RUN
        --vision SIGLIP --llm LLM"""
    from cxrdata.train.lofi import TrainOptions, train_lofi

    result = train_lofi(TrainOptions(data=list(data), run=run, recipe=recipe, vision=vision, text=text, llm=llm,
                                     tiny=tiny, max_steps=max_steps, resume=resume, device=device, seed=seed,
                                     quiet=quiet))
    if not result.is_main:
        return
    def left_out(config: str) -> str:
        counts = result.left_out[config]
        return f" ({', '.join(f'{n} {why}' for why, n in sorted(counts.items()))} left out)" if counts else ""

    used = ", ".join(f"{k} {v} rows{left_out(k)}" for k, v in result.sources.items())
    console.print(f"sources: {used}" + (f"; optional, not found: {', '.join(result.missing_optional)}"
                                         if result.missing_optional else ""))
    last = f"{result.losses[-1]:.4f}" if result.losses else "n/a"
    console.print(f"steps {result.start_step} -> {result.step} of {result.total_steps} "
                  f"({result.steps_per_epoch} per epoch); last loss {last}; checkpoint {result.checkpoint}")


@eval_group.command("retrieval")
@click.option("--run", type=click.Path(path_type=Path), required=True, help="A `train lofi` run folder.")
@click.option("--data", "data", type=click.Path(path_type=Path), multiple=True, required=True,
              help="A build OUT holding the config (repeatable).")
@click.option("--split", default="test", show_default=True)
@click.option("--config", default="mimic", show_default=True, help="Config with images and report text.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("retrieval.json"), show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N rows (smoke tests).")
@friendly_errors
def eval_retrieval(run: Path, data: tuple[Path, ...], split: str, config: str, out: Path, batch_size: int,
                   device: str, limit: int | None) -> None:
    """Image->text and text->image Recall@1/5/10 of a LoFi run (LoFi: R@1 13.9 / 11.9, MIMIC-CXR test)."""
    from cxrdata.evaluate.retrieval import evaluate_retrieval, report_lines, write_report

    report = evaluate_retrieval(run, list(data), split, config, batch_size, device, limit)
    for line in report_lines(report):
        console.print(line)
    console.print(f"wrote {write_report(report, out)}")


@main.group("predict")
def predict_group() -> None:
    """Run a trained model over built shards and write its predictions."""


@predict_group.command("lofi-boxes")
@click.option("--run", type=click.Path(path_type=Path), required=True, help="A `train lofi` run folder.")
@click.option("--data", "data", type=click.Path(path_type=Path), multiple=True, required=True,
              help="A build OUT holding the config (repeatable).")
@click.option("--config", required=True, help="Config with a phrase per record (ms-cxr, ms-cxr-loc, vindr-prompts).")
@click.option("--split", default="test", show_default=True)
@click.option("--phrase-column", default=None, help="Column to ground; default: phrase, class_name, prompt, category.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("boxes.json"), show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N rows.")
@friendly_errors
def predict_lofi_boxes(run: Path, data: tuple[Path, ...], config: str, split: str, phrase_column: str | None,
                       out: Path, batch_size: int, max_new_tokens: int, device: str, limit: int | None) -> None:
    """Ground each record's phrase (`Detect all instances of "{phrase}".`) and write the decoded boxes as JSON."""
    from cxrdata.train.lofi import predict_boxes

    doc = predict_boxes(run, list(data), config, split, out, phrase_column, batch_size, max_new_tokens, device, limit)
    bad = sum(1 for r in doc["records"].values() if r["error"])
    console.print(f"wrote {out}: {len(doc['records'])} records, {bad} whose text did not parse as {doc['box_format']} "
                  "boxes")


# -- train ldm / heatmaps ldm (cxrdata.train.ldm; needs the [train] extra) -----------------------------------------
@train_group.command("ldm")
@click.option("--data", "data", type=click.Path(path_type=Path), multiple=True, required=True,
              help="A build OUT holding the ldm-prompts config (repeatable).")
@click.option("--run", "--out", "--run-dir", "run", type=click.Path(path_type=Path), required=True,
              help="Run folder (run.json, checkpoints, metrics, embeddings.safetensors); under torchrun spell it "
                   "--out or --run-dir (torchrun claims --run).")
@click.option("--ldm", type=click.Path(path_type=Path), default=None,
              help="MONAI bundle cxr_image_synthesis_latent_diffusion_model (models/autoencoder.pth, "
                   "models/diffusion_model.pth); required unless --tiny.")
@click.option("--clip", type=click.Path(path_type=Path), default=None,
              help="Local CLIP text encoder + tokenizer (transformers; text_encoder/ + tokenizer/ of SD 2.1 too); "
                   "required unless --tiny.")
@click.option("--recipe", default=None, help="ldm-prompt-tuning (default), ldm-prompt-tuning-tiny or a YAML file.")
@click.option("--tiny", is_flag=True, help="The tiny recipe; without --ldm/--clip, tiny random-weight ones are "
                                           "written to RUN/weights (CPU tests, no weights needed).")
@click.option("--lut", type=click.Path(path_type=Path), default=None,
              help="Gaussian LUT for shards built without --lut (Gaussians from each row's locations).")
@click.option("--config", default=None, help="Config to read (default: the recipe's, ldm-prompts).")
@click.option("--split", default=None, help="Split to train on (default: the recipe's, train).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after this step (default: recipe).")
@click.option("--resume", is_flag=True, help="Continue RUN from its latest checkpoint, exactly.")
@click.option("--seed", type=int, default=None, help="Replace the recipe's seed.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--quiet", is_flag=True, help="No per-step lines.")
@friendly_errors
def train_ldm_cmd(data: tuple[Path, ...], run: Path, ldm: Path | None, clip: Path | None, recipe: str | None,
                  tiny: bool, lut: Path | None, config: str | None, split: str | None, max_steps: int | None,
                  resume: bool, seed: int | None, device: str, quiet: bool) -> None:
    """Anatomy prompt tuning of the frozen chest X-ray LDM (seed 003): only the location-token embeddings
    learn.

    \b
    Several GPUs (torch DDP; each process takes the recipe's batch size):
      torchrun --standalone --nproc_per_node N -m cxrdata.cli train ldm --data OUT --out RUN
        --ldm BUNDLE --clip CLIP"""
    from cxrdata.train.ldm import RECIPE, TINY_RECIPE, train_ldm

    if tiny and recipe is not None:
        raise CxrdataError("give --tiny or --recipe, not both")
    path = train_ldm(list(data), run, ldm=ldm, clip=clip, recipe=recipe or (TINY_RECIPE if tiny else RECIPE),
                     lut=lut, max_steps=max_steps, resume=resume, device=device, config=config, split=split,
                     seed=seed, tiny=tiny, log=(lambda _m: None) if quiet else console.print)
    if os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 writes the run
        console.print(f"tuned embeddings: {path}")


@main.group("heatmaps")
def heatmaps_group() -> None:
    """Write a model's phrase-grounding heatmaps for `cxrdata eval grounding --heatmaps DIR`."""


@heatmaps_group.command("ldm")
@click.option("--run", type=click.Path(path_type=Path), default=None, help="A `train ldm` run folder.")
@click.option("--frozen", is_flag=True, help="CLIP's own embeddings: the frozen-LDM baseline (no --run needed).")
@click.option("--recipe", default=None, help="With --frozen: the model's recipe (default ldm-prompt-tuning).")
@click.option("--data", "data", type=click.Path(path_type=Path), multiple=True, required=True,
              help="A build OUT whose rows have id, image, prompt (ms-cxr-loc, vindr-prompts; repeatable).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder of <record id>.npy heatmaps.")
@click.option("--ldm", type=click.Path(path_type=Path), default=None, help="MONAI bundle (default: the run's).")
@click.option("--clip", type=click.Path(path_type=Path), default=None, help="CLIP folder (default: the run's).")
@click.option("--embeddings", type=click.Path(path_type=Path), default=None,
              help="Tuned embeddings file (default: RUN/embeddings.safetensors).")
@click.option("--config", default=None, help="Config to read when OUT holds several.")
@click.option("--split", default=None, help="Only this split (default: every split).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N records.")
@click.option("--overwrite", is_flag=True, help="Recompute heatmaps already in --out.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@friendly_errors
def heatmaps_ldm_cmd(run: Path | None, frozen: bool, recipe: str | None, data: tuple[Path, ...], out: Path,
                     ldm: Path | None, clip: Path | None, embeddings: Path | None, config: str | None,
                     split: str | None, limit: int | None, overwrite: bool, device: str) -> None:
    """Cross-attention heatmaps over layers and timesteps (Vilouras et al. 2024, as in seed 003)."""
    from cxrdata.train.ldm_heatmaps import ldm_heatmaps

    summary = ldm_heatmaps(list(data), out, run=run, recipe=recipe, ldm=ldm, clip=clip, embeddings=embeddings,
                           frozen=frozen, config=config, split=split, device=device, overwrite=overwrite,
                           limit=limit, log=lambda _m: None)
    console.print(f"wrote {summary['written']} heatmaps to {out} ({summary['kept_existing']} already there)")


if __name__ == "__main__":
    main()
