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
from cxrdata.pipeline.build import BuildOptions, build
from cxrdata.pipeline.summary import print_summary
from cxrdata.sources.fusion import FUSE_MODES

# Tables are wide: when output is captured (not a terminal), do not squeeze them to 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=160)


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a CxrdataError into one red line and exit status 2 (no traceback)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CxrdataError as exc:
            click.secho("error: ", fg="red", bold=True, err=True, nl=False)
            click.echo(str(exc), err=True)
            sys.exit(2)

    return wrapper


def build_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every ``build`` command."""
    options = [
        click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder."),
        click.option("--workers", type=int, default=os.cpu_count() or 1, show_default=True,
                     help="Worker processes of the local engine."),
        click.option("--tasks", type=int, default=None,
                     help="Number of tasks (= shards per split); default: from the number of records."),
        click.option("--engine", type=click.Choice(["local"]), default="local", show_default=True),
        click.option("--overwrite", is_flag=True, help="Delete a previous build in --out and start over."),
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


RECIPE_ONLY = ("extractor", "radgraph_cache", "device", "extraction_cache", "lut")


def recipe_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--recipe`` and the language stage's options (they apply only with a recipe)."""
    options = [
        click.option("--recipe", default=None,
                     help="Build a recipe: a name under recipes/ (ldm-prompts, ms-cxr-loc) or a YAML file."),
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
              overwrite: bool, quiet: bool) -> None:
    options = BuildOptions(out=out, workers=workers, tasks=tasks, overwrite=overwrite, quiet=quiet, engine=engine)
    result = build(sources, options)
    if not quiet:
        print_summary(console, result)


def sample_root(dataset: str) -> Path:
    from cxrdata.sample.bundled import bundled_root

    return bundled_root(dataset)


@click.group()
@click.version_option(__version__, prog_name="cxrdata")
def main() -> None:
    """Turn raw chest X-ray downloads into clean, typed, sharded Parquet datasets."""


@main.group("build")
def build_group() -> None:
    """Build a dataset into OUT (resumable: rerun the same command to finish a killed build)."""


@build_group.command("mimic")
@click.option("--root", type=click.Path(path_type=Path), help="MIMIC-CXR-JPG root (holds files/ and the CSVs).")
@click.option("--sample", is_flag=True, help="Build the bundled synthetic sample instead of --root.")
@click.option("--reports-root", type=click.Path(path_type=Path), default=None,
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
    from cxrdata.sources.mimic import MimicSource

    root = _root_or_sample(root, sample, "mimic")
    kept = () if views.strip().lower() == "all" else tuple(v.strip() for v in views.split(",") if v.strip())
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
@click.option("--root", type=click.Path(path_type=Path), help="Folder with MS_CXR_Local_Alignment_v*.csv, or the CSV.")
@click.option("--mimic-root", type=click.Path(path_type=Path), help="MIMIC-CXR-JPG root holding the images.")
@click.option("--sample", is_flag=True, help="Build the bundled synthetic sample (MS-CXR 1.1.0).")
@image_options
@recipe_options
@build_options
@friendly_errors
def build_ms_cxr(root: Path | None, mimic_root: Path | None, sample: bool, image_size: int, image_format: str,
                 recipe: str | None, extractor: str | None, radgraph_cache: Path | None, device: str,
                 extraction_cache: Path | None, lut: Path | None, **kwargs: Any) -> None:
    """MS-CXR phrases and boxes on MIMIC-CXR-JPG images (v1.0.0 or v1.1.0, from the header)."""
    from cxrdata.sources.ms_cxr import MsCxrSource

    if sample:
        mimic_root = sample_root("mimic")
        root = mimic_root / "ms-cxr" / "1.1.0"
    if root is None or mimic_root is None:
        raise CxrdataError("give --root and --mimic-root, or --sample")
    if recipe is not None:
        from cxrdata.sources.recipes import load_recipe, ms_cxr_recipe_source

        overrides = recipe_overrides(kwargs["out"], image_size=image_size, image_format=image_format,
                                     extractor=extractor, radgraph_cache=radgraph_cache, device=device,
                                     extraction_cache=extraction_cache, lut=lut)
        recipe_source, selection = ms_cxr_recipe_source(load_recipe(recipe), root, mimic_root, overrides)
        print_extractor(selection, kwargs["quiet"])
        run_build([recipe_source], **kwargs)
        return
    refuse_recipe_options()
    source = MsCxrSource(root=root, mimic_root=mimic_root, image_size=image_size, image_format=image_format)
    run_build([source], **kwargs)



@build_group.command("vindr")
@click.option("--root", type=click.Path(path_type=Path), help="VinDr-CXR root (holds annotations/, train/, test/).")
@click.option("--sample", is_flag=True, help="Build the bundled synthetic sample instead of --root.")
@click.option("--fuse", type=click.Choice(FUSE_MODES), default="none", show_default=True,
              help="Add a fused view of the readers' boxes beside the raw ones (never replaces them).")
@click.option("--iou", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.1, show_default=True,
              help="Boxes of one label overlapping more than this are fused.")
@image_options
@build_options
@friendly_errors
def build_vindr(root: Path | None, sample: bool, fuse: str, iou: float, image_size: int, image_format: str,
                **kwargs: Any) -> None:
    """VinDr-CXR DICOMs with every reader's boxes and image-level labels (train and test)."""
    from cxrdata.sources.vindr import VindrSource

    source = VindrSource(root=_root_or_sample(root, sample, "vindr"), fuse=fuse, iou=iou, image_size=image_size,
                         image_format=image_format)
    run_build([source], **kwargs)


@build_group.command("padchest-gr")
@click.option("--root", type=click.Path(path_type=Path),
              help="PadChest-GR root (grounded_reports_*.json, master_table.csv, PadChest_GR/).")
@click.option("--sample", is_flag=True, help="Build the bundled synthetic sample instead of --root.")
@image_options
@build_options
@friendly_errors
def build_padchest_gr(root: Path | None, sample: bool, image_size: int, image_format: str, **kwargs: Any) -> None:
    """PadChest-GR 16-bit PNGs with grounded sentences (en + es) and both readers' boxes."""
    from cxrdata.sources.padchest_gr import PadchestGrSource

    source = PadchestGrSource(root=_root_or_sample(root, sample, "padchest-gr"), image_size=image_size,
                              image_format=image_format)
    run_build([source], **kwargs)


@build_group.command("imagenome")
@click.option("--root", type=click.Path(path_type=Path),
              help="Chest ImaGenome root (holds gold_dataset/ and silver_dataset/), or the folder above it.")
@click.option("--mimic-root", type=click.Path(path_type=Path), help="MIMIC-CXR-JPG root holding the images.")
@click.option("--sample", is_flag=True, help="Build the bundled synthetic sample (on its own MIMIC-CXR-JPG sample).")
@image_options
@build_options
@friendly_errors
def build_imagenome(root: Path | None, mimic_root: Path | None, sample: bool, image_size: int, image_format: str,
                    **kwargs: Any) -> None:
    """Chest ImaGenome in two configs: imagenome-gold (gold boxes) and imagenome-silver (scene graphs)."""
    from cxrdata.sources.imagenome import imagenome_sources

    if sample:
        root = _root_or_sample(root, sample, "imagenome")
        mimic_root = mimic_root or root / "mimic-cxr-jpg"  # where the sample writer puts its MIMIC tree
    if root is None or mimic_root is None:
        raise CxrdataError("give --root and --mimic-root, or --sample")
    run_build(imagenome_sources(root, mimic_root, image_size=image_size, image_format=image_format), **kwargs)

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
@friendly_errors
def sample_padchest_gr(out: Path, seed: int) -> None:
    """PadChest-GR: 16-bit PNGs, grounded_reports JSON and master_table.csv."""
    from cxrdata.sample.padchest_gr import write_padchest_gr_sample

    written = write_padchest_gr_sample(out, seed=seed)
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
@click.option("--root", type=click.Path(path_type=Path), required=True)
@click.option("--reports-root", type=click.Path(path_type=Path), default=None)
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
@click.option("--root", type=click.Path(path_type=Path), help="VinDr-CXR root (holds annotations/, train/, test/).")
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
@build_options
@friendly_errors
def synth_vindr(root: Path | None, sample: bool, lut_path: Path, classes: str | None, splits: tuple[str, ...],
                fuse: str, iou: float, include_mixtures: bool, image_size: int, image_format: str,
                **kwargs: Any) -> None:
    """One row per VinDr-CXR (image, class): its boxes, their nearest LUT locations (W2²) and the prompt."""
    from cxrdata.targets.synth_prompts import VindrPromptSource

    names = tuple(c.strip() for c in classes.split(",") if c.strip()) if classes is not None else ()
    if classes is not None and not names:
        raise CxrdataError("--classes is empty")
    source = VindrPromptSource(root=_root_or_sample(root, sample, "vindr"), lut_path=lut_path, classes=names,
                               splits=splits, image_size=image_size, image_format=image_format, fuse=fuse, iou=iou,
                               include_mixtures=include_mixtures)
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
def eval_grounding(data: Path, heatmaps: Path | None, oracle: bool, config: str | None, split: str | None,
                   classes: str | None, out: Path, seed: int, resamples: int, interpolation: str) -> None:
    """CNR and mIoU per class with 95% bootstrap intervals (seed 003, tables 1 and 3)."""
    from cxrdata.evaluate.grounding_eval import evaluate_grounding, report_table, write_report

    names = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    report = evaluate_grounding(data, heatmaps, oracle, config, split, names, seed, resamples,
                                interpolation=interpolation)  # type: ignore[arg-type]
    console.print(report_table(report))
    if report.skipped_no_box:
        console.print(f"[yellow]{len(report.skipped_no_box)} records without a box were not scored[/yellow] "
                      f"(listed in the JSON), e.g. {report.skipped_no_box[0]}")
    csv_path, json_path = write_report(report, out)
    console.print(f"wrote {csv_path} and {json_path}")


if __name__ == "__main__":
    main()
