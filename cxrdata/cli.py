"""The ``cxrdata`` command line: parses options, calls the library, prints. No logic lives here."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from cxrdata import __version__
from cxrdata.errors import CxrdataError
from cxrdata.pipeline.build import BuildOptions, build
from cxrdata.pipeline.summary import print_summary

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
@build_options
@friendly_errors
def build_mimic(root: Path | None, sample: bool, reports_root: Path | None, views: str, image_size: int,
                image_format: str, **kwargs: Any) -> None:
    """MIMIC-CXR-JPG images with split, CheXpert labels and report sections."""
    from cxrdata.sources.mimic import MimicSource

    root = _root_or_sample(root, sample, "mimic")
    kept = () if views.strip().lower() == "all" else tuple(v.strip() for v in views.split(",") if v.strip())
    source = MimicSource(root=root, reports_root=reports_root, views=kept, image_size=image_size,
                         image_format=image_format)
    run_build([source], **kwargs)


@build_group.command("ms-cxr")
@click.option("--root", type=click.Path(path_type=Path), help="Folder with MS_CXR_Local_Alignment_v*.csv, or the CSV.")
@click.option("--mimic-root", type=click.Path(path_type=Path), help="MIMIC-CXR-JPG root holding the images.")
@click.option("--sample", is_flag=True, help="Build the bundled synthetic sample (MS-CXR 1.1.0).")
@image_options
@build_options
@friendly_errors
def build_ms_cxr(root: Path | None, mimic_root: Path | None, sample: bool, image_size: int, image_format: str,
                 **kwargs: Any) -> None:
    """MS-CXR phrases and boxes on MIMIC-CXR-JPG images (v1.0.0 or v1.1.0, from the header)."""
    from cxrdata.sources.ms_cxr import MsCxrSource

    if sample:
        mimic_root = sample_root("mimic")
        root = mimic_root / "ms-cxr" / "1.1.0"
    if root is None or mimic_root is None:
        raise CxrdataError("give --root and --mimic-root, or --sample")
    source = MsCxrSource(root=root, mimic_root=mimic_root, image_size=image_size, image_format=image_format)
    run_build([source], **kwargs)


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


if __name__ == "__main__":
    main()
