"""``synth-prompts vindr``: the first spelling of ``build vindr --recipe vindr-prompts``, kept as an alias."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cxrdata.cli.common import INPUT_PATH, LazyGroup, apply, click_options, friendly_errors, given
from cxrdata.cli.datasets import build_options, run_and_report


@friendly_errors
def synth_vindr(root: Path | None, sample: bool, lut_path: Path, classes: str | None, splits: tuple[str, ...],
                fuse: str, iou: float, include_mixtures: bool, **values: Any) -> None:
    """One row per VinDr-CXR (image, class): its boxes, their nearest LUT locations (W2²) and the prompt.
    The same build as `cxrdata build vindr --recipe vindr-prompts`."""
    from cxrdata.api import plans
    from cxrdata.imaging.dicom_stage import DicomDisplay
    from cxrdata.imaging.stages import ImageOptions

    image = {**given(ImageOptions, values), **given(DicomDisplay, values)}
    options: dict[str, Any] = {"lut": lut_path, "splits": ",".join(splits), "fuse": fuse, "iou": iou,
                               "include_mixtures": include_mixtures, **{_name(k): v for k, v in image.items()}}
    if root is not None:
        options["root"] = root
    if classes is not None:
        options["classes"] = classes
    run_and_report(plans("vindr", out=values["out"], recipe="vindr-prompts", sample=sample, **options), values)


def _name(field: str) -> str:
    return {"size": "image_size", "format": "image_format", "fit": "image_fit", "display": "dicom_display"}.get(
        field, field)


def _add_vindr(group: click.Group) -> None:
    from cxrdata.imaging.dicom_stage import DicomDisplay
    from cxrdata.imaging.stages import ImageOptions
    from cxrdata.sources.fusion import FUSE_MODES

    group.command("vindr")(apply([
        click.option("--root", type=INPUT_PATH, help="VinDr-CXR root (holds annotations/, train/, test/)."),
        click.option("--sample", is_flag=True, help="Use the bundled synthetic VinDr-CXR sample instead of --root."),
        click.option("--lut", "lut_path", type=click.Path(path_type=Path), required=True,
                     help="LUT JSON (cxrdata lut build)."),
        click.option("--classes", default=None,
                     help="Comma-separated VinDr box classes; default: those among the 8 pathologies of "
                          "Vilouras et al. 2025."),
        click.option("--split", "splits", type=click.Choice(["train", "test"]), multiple=True, default=("test",),
                     show_default=True, help="Splits to use (repeat for both); the paper uses test."),
        click.option("--fuse", type=click.Choice(FUSE_MODES), default="none", show_default=True,
                     help="Match the readers' fused boxes instead of every reader's box."),
        click.option("--iou", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.1, show_default=True,
                     help="Boxes of one class overlapping more than this are fused."),
        click.option("--include-mixtures", is_flag=True,
                     help="Let boxes match the bilateral mixtures too (through their moment-matched Gaussian)."),
        *click_options(ImageOptions),
        *click_options(DicomDisplay),
        *build_options(),
    ], synth_vindr))


synth_group = LazyGroup(
    "synth-prompts", _add_vindr,
    help="Synthetic '{location} {class}' prompts for boxes, from the Gaussian LUT (Vilouras et al. 2025, "
         "'Anatomy-Grounded Weakly Supervised Prompt Tuning for Chest X-ray Latent Diffusion Models', appendix B).")
