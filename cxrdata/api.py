"""The Python API: what the command line calls, usable from a notebook or a script.

    import cxrdata
    result = cxrdata.build("mimic", root="/data/mimic-cxr-jpg", out="shards/", image_size=256)
    ds = cxrdata.load("shards/", split="train")
    findings = cxrdata.doctor("vindr", root="/data/vindr-cxr")

Options are the command line's, with underscores (``image_size``, ``reports_root``, ``box_format``): the
dataset's own, its images', and those of the recipe's stages. Nothing here prints unless asked.
"""

from __future__ import annotations

from dataclasses import MISSING
from pathlib import Path
from typing import Any

from cxrdata.errors import CxrdataError
from cxrdata.pipeline.build import BuildOptions, BuildResult
from cxrdata.pipeline.build import build as run_plans
from cxrdata.pipeline.plan import ConfigPlan, option_groups, plan_build
from cxrdata.recipe import option_fields
from cxrdata.sources.base import DatasetEntry
from cxrdata.sources.registry import ENTRIES, entry, resolve


def plans(dataset: str, *, out: str | Path, recipe: str | Path | None = None, sample: bool = False,
          **options: Any) -> list[ConfigPlan]:
    """The checked plans of a build (one per output config), without running them."""
    source, image, stages, subset = option_groups(dataset).split(options)
    if sample:
        paths = sample_paths(entry(dataset))
        clash = sorted(set(source) & set(paths))
        if clash:
            raise CxrdataError(f"give either {', '.join('--' + c.replace('_', '-') for c in clash)} or --sample, "
                               "not both")
        source.update(paths)
    required = [f.name for f in option_fields(entry(dataset).options) if f.default is MISSING]
    if any(name not in source for name in required):
        raise CxrdataError(f"give {' and '.join('--' + n.replace('_', '-') for n in required)}, or --sample")
    return plan_build(dataset, recipe, out=Path(out), source=source, image=image, stages=stages, subset=subset)


def build(dataset: str, *, out: str | Path, recipe: str | Path | None = None, sample: bool = False,
          workers: int | None = None, tasks: int | None = None, engine: str = "local", ray_address: str | None = None,
          overwrite: bool = False, quiet: bool = True, max_reject_share: float = 0.5, **options: Any) -> BuildResult:
    """Build ``dataset`` (``mimic``, ``ms-cxr``, ``imagenome``, ``vindr``, ``padchest-gr``, ...) into ``out``.

    Resumable (run it again to finish a killed build), refuses a different configuration in the same
    ``out``, and returns the counts; ``result.problems`` says when a config wrote nothing or rejected more
    than ``max_reject_share`` of what it read."""
    config_plans = plans(dataset, out=out, recipe=recipe, sample=sample, **options)
    settings = BuildOptions(out=Path(out), tasks=tasks, overwrite=overwrite, quiet=quiet, engine=engine,
                            address=ray_address, max_reject_share=max_reject_share)
    if workers is not None:
        settings.workers = workers
    return run_plans(config_plans, settings)


def load(out: str | Path, config: str | None = None, split: str | None = None) -> Any:
    """A build's config as a ``datasets`` object (a ``DatasetDict``, or one split's ``Dataset``), with the
    features the dataset card declares (closed vocabularies as ``ClassLabel``), as ``load_dataset(OUT, config)``."""
    import datasets

    from cxrdata.io.hub_features import config_features
    from cxrdata.io.layout import read_build

    found = read_build(Path(out), config)
    files = {s: [str(p) for p in found.split_files(s)] for s in (found.splits if split is None else [split])}
    features = datasets.Features.from_dict(config_features(found.all_files[0]))
    loaded = datasets.load_dataset("parquet", data_files=files, features=features)
    return loaded[split] if split is not None else loaded


def doctor(dataset: str, *, decode: int = 20, sample: bool = False, **paths: Any) -> list[Any]:
    """What a download holds, what is missing or malformed, and how to fix each (a list of findings)."""
    dataset_entry = entry(dataset)
    if sample:
        paths = {**{k: v for k, v in sample_paths(dataset_entry).items()}, **paths}
    return resolve(dataset_entry.doctor)(**{k: Path(v) if v is not None else None for k, v in paths.items()},
                                         decode=decode)


def sample_data(dataset: str, out: str | Path, seed: int = 0, **options: Any) -> Any:
    """Write a small synthetic download of ``dataset`` in its exact real layout (returns what was written)."""
    return resolve(entry(dataset).sample)(Path(out), seed=seed, **options)


def bundled_root(name: str, seed: int = 0) -> Path:
    """The root of the bundled sample of dataset or sample tree ``name``, generated on first use."""
    from cxrdata.sample.bundled import generated

    names = {e.tree: e.sample for e in ENTRIES.values() if not e.sample_tree}
    if name not in names:
        raise CxrdataError(f"no bundled sample for {name!r}; available: {', '.join(sorted(names))}")
    return generated(name, resolve(names[name]), seed)


def sample_paths(dataset: DatasetEntry, seed: int = 0) -> dict[str, Path]:
    """The path options of a dataset's bundled sample (``--sample``)."""
    root = bundled_root(dataset.tree, seed)
    return {option: root / relative if relative else root for option, relative in dataset.sample_paths.items()}
