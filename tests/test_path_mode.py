"""``--image-format path`` gives a dataset that loads from any working directory, for every dataset:
JPEG sources keep a typed ``Image`` column (absolute path, opened by ``datasets``); DICOM and 16-bit
PNG sources, which no ``datasets`` image decoder shows correctly, a plain absolute string path."""

from __future__ import annotations

import os
from pathlib import Path

import datasets
import pytest
from faults import assert_ok, cxrdata

from cxrdata.api import bundled_root

pytestmark = pytest.mark.slow


def relative(path: Path, cwd: Path) -> str:
    return os.path.relpath(path, cwd)


def cases(mimic_root: Path) -> dict[str, tuple[list[str], list[str], bool]]:
    """dataset -> (build arguments with roots as absolute paths, configs, stored as an Image feature)."""
    imagenome = bundled_root("imagenome")
    return {
        "mimic": (["mimic", "--root", str(mimic_root)], ["mimic"], True),
        "ms-cxr": (["ms-cxr", "--root", str(mimic_root / "ms-cxr"), "--mimic-root", str(mimic_root)],
                   ["ms-cxr"], True),
        "imagenome": (["imagenome", "--root", str(imagenome / "chest-imagenome-dataset-1.0.0"), "--mimic-root",
                       str(imagenome / "mimic-cxr-jpg")], ["imagenome-gold", "imagenome-silver"], True),
        "vindr": (["vindr", "--root", str(bundled_root("vindr"))], ["vindr"], False),
        "padchest-gr": (["padchest-gr", "--root", str(bundled_root("padchest-gr"))], ["padchest-gr"], False),
    }


@pytest.mark.parametrize("dataset", ["mimic", "ms-cxr", "imagenome", "vindr", "padchest-gr"])
def test_path_mode_loads_from_another_working_directory(mimic_sample, tmp_path, dataset):
    args, configs, as_image = cases(mimic_sample.root)[dataset]
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    # roots and OUT given relative to `here`, the build run from there
    args = [relative(Path(a), here) if a.startswith("/") else a for a in args]
    assert_ok(cxrdata("build", *args, "--out", "out", "--image-format", "path", "--workers", "1", "--quiet",
                      "--max-reject-share", "1", cwd=here))
    previous = Path.cwd()
    os.chdir(elsewhere)
    try:
        for config in configs:
            ds = datasets.load_dataset(str(here / "out"), config)
            split = next(iter(ds))
            feature = ds[split].features["image"]
            assert isinstance(feature, datasets.Image) == as_image
            for row in ds[split].select(range(min(3, len(ds[split])))):
                if as_image:
                    assert row["image"].size == (row["image_width"], row["image_height"])
                else:
                    assert isinstance(row["image"], str) and Path(row["image"]).is_absolute()
                    assert Path(row["image"]).is_file()
                    assert feature == datasets.Value("string")
    finally:
        os.chdir(previous)
