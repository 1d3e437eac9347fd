"""Real third-party DICOMs through a VinDr-CXR build, against renderings written here with pydicom.

The files come from the ``pydicom-data`` wheel (the [test] extra), read with ``download=False`` so
that the test never reaches the network: NEMA WG04 ``RG1_*`` (a MONOCHROME1 15-bit CR chest,
window 15000/30000) as ``UNCR`` (uncompressed original), ``J2KR`` (JPEG 2000 lossless), ``J2KI``
(JPEG 2000 lossy) and ``UNCI`` (the lossy image decompressed); the wheel has no RLE form, so one is
derived here from ``UNCR`` with pydicom's RLE encoder. pydicom's own ``vlut_04`` (a VOI LUT
Sequence) and ``mlut_18`` (a signed Modality LUT Sequence) go through both display modes.

Each file is placed in a VinDr-layout tree (annotation CSVs + ``train/<image_id>.dicom``), built
with ``--image-size 0`` (full-size lossless PNG) and loaded with ``datasets``; the stored pixels
are compared with an independent rendering: ``apply_modality_lut`` → ``apply_voi_lut`` →
MONOCHROME1 ``max − x`` → min–max to 0–255 (``stretch``), or the window's own output range scaled
to 0–255 and MONOCHROME1 ``255 − x`` (``window``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import datasets
import numpy as np
import pydicom
import pytest
from cxrdata_testing import build_with
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import RLELossless

from cxrdata.sample import tables
from cxrdata.sample.vindr import ANNOTATION_COLUMNS, IMAGE_LABELS_TEST, IMAGE_LABELS_TRAIN

LOSSLESS = ("RG1_UNCR.dcm", "RG1_J2KR.dcm", "RG1_RLE (derived)", "vlut_04.dcm", "mlut_18.dcm")
LOSSY = ("RG1_J2KI.dcm", "RG1_UNCI.dcm")  # UNCI is J2KI decompressed: the same lossy pixels
DERIVED_RLE = "RG1_RLE (derived)"


def third_party(name: str) -> Path:
    found = get_testdata_file(name, download=False)
    assert found, f"{name} not installed: pip install pydicom-data (in cxrdata's [test] extra)"
    return Path(found)


def image_id(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()  # a 32-hex id, as VinDr-CXR's


def write_tree(root: Path) -> dict[str, str]:
    """A VinDr-CXR tree holding the files (lossy ones in test/); image_id -> file name."""
    names = {}
    for split, files in (("train", LOSSLESS), ("test", LOSSY)):
        for name in files:
            target = root / split / f"{image_id(name)}.dicom"
            target.parent.mkdir(parents=True, exist_ok=True)
            if name == DERIVED_RLE:
                ds = pydicom.dcmread(third_party("RG1_UNCR.dcm"))
                ds.compress(RLELossless, generate_instance_uid=False)
                ds.save_as(target)
            else:
                shutil.copyfile(third_party(name), target)
            names[image_id(name)] = name
    train = [i for i, n in names.items() if n in LOSSLESS]
    test = [i for i, n in names.items() if n in LOSSY]
    box = ["Cardiomegaly", "10.0", "20.0", "300.5", "400.25"]
    ann = root / "annotations"
    tables.write_csv(ann / "annotations_train.csv", ("image_id", "rad_id", *ANNOTATION_COLUMNS),
                     [[i, "R1", *box] for i in train])
    tables.write_csv(ann / "annotations_test.csv", ("image_id", "rad_ID", *ANNOTATION_COLUMNS),
                     [[i, "", *box] for i in test])
    label = ["1" if c == "Cardiomegaly" else "0" for c in IMAGE_LABELS_TRAIN]
    tables.write_csv(ann / "image_labels_train.csv", ("image_id", "rad_id", *IMAGE_LABELS_TRAIN),
                     [[i, "R1", *label] for i in train])
    tables.write_csv(ann / "image_labels_test.csv", ("image_id", *IMAGE_LABELS_TEST), [[i, *label] for i in test])
    return names


@cache
def source_dataset(name: str) -> pydicom.Dataset:
    if name == DERIVED_RLE:
        name = "RG1_UNCR.dcm"  # the RLE form holds exactly these pixels
    return pydicom.dcmread(third_party(name))


@cache
def independent(name: str, display: str) -> np.ndarray:
    """pydicom's modality LUT and VOI, MONOCHROME1 inverted, as 0-255 grey levels (float)."""
    ds = source_dataset(name)
    data = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds).astype(np.float64)
    mono1 = ds.PhotometricInterpretation == "MONOCHROME1"
    if display == "stretch" or not ("VOILUTSequence" in ds or "WindowCenter" in ds):
        data = data.max() - data if mono1 else data  # the published readers' np.amax(data) - data
        return (data - data.min()) / (data.max() - data.min()) * 255.0
    if "VOILUTSequence" in ds:
        out_max = 2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1  # the LUT's declared output range
    else:
        out_max = 2 ** int(ds.BitsStored) - 1  # apply_windowing's output range [0, 2**BitsStored - 1]
    grey = data / out_max * 255.0
    return 255.0 - grey if mono1 else grey


@dataclass(frozen=True)
class Built:
    names: dict[str, str]
    rows: dict[str, dict[str, np.ndarray]]  # display -> image_id -> stored pixels
    manifests: dict[str, dict]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("vindr-real-dicoms")
    names = write_tree(base / "vindr")
    rows, manifests = {}, {}
    for display in ("stretch", "window"):
        out = base / f"out-{display}"
        build_with("vindr", out, root=base / "vindr", image_size=0, dicom_display=display)
        manifests[display] = json.loads((out / "manifest.json").read_text())
        ds = datasets.load_dataset("parquet", data_dir=str(out / "data" / "vindr"), split="train+test")
        rows[display] = {row["id"]: np.asarray(row["image"]) for row in ds}
    return Built(names, rows, manifests)


def test_every_file_is_written_full_size_and_the_choice_is_recorded(built: Built) -> None:
    for display, manifest in built.manifests.items():
        config = manifest["configs"]["vindr"]
        assert config["options"]["dicom_display"] == display
        assert config["counts"]["rejects_by_reason"] == {}
        assert set(built.rows[display]) == set(built.names)
    rg1 = built.rows["stretch"][image_id("RG1_UNCR.dcm")]
    assert rg1.dtype == np.uint8 and rg1.shape == (1955, 1841)


@pytest.mark.parametrize("display", ["stretch", "window"])
@pytest.mark.parametrize("name", LOSSLESS + LOSSY)
def test_stored_pixels_equal_the_independent_rendering(built: Built, display: str, name: str) -> None:
    stored = built.rows[display][image_id(name)].astype(np.float64)
    expected = independent(name, display)
    assert stored.shape == expected.shape
    assert np.abs(stored - expected).max() <= 0.5 + 1e-6  # the nearest grey level: 0 levels apart after rounding


def test_window_leaves_rg1_in_30_to_248_and_stretch_spans_0_to_255(built: Built) -> None:
    """FORMATS.md §4.2: the strict window does not fill the range on a real CR chest; the stretch does."""
    windowed, stretched = (built.rows[d][image_id("RG1_UNCR.dcm")] for d in ("window", "stretch"))
    assert (int(windowed.min()), int(windowed.max())) == (30, 248)
    assert (int(stretched.min()), int(stretched.max())) == (0, 255)
    assert np.corrcoef(windowed.ravel(), stretched.ravel())[0, 1] > 0.9999  # the same picture, stretched


def test_lossy_jpeg2000_against_the_lossless_original(built: Built) -> None:
    """J2KI equals its own decompressed copy (UNCI) and differs from the original by a few grey levels."""
    stored = built.rows["stretch"]
    lossy, decompressed = stored[image_id("RG1_J2KI.dcm")], stored[image_id("RG1_UNCI.dcm")]
    assert np.array_equal(lossy, decompressed)
    diff = np.abs(lossy.astype(int) - independent("RG1_UNCR.dcm", "stretch").round())
    assert int(diff.max()) == 5 and 0.6 < float(diff.mean()) < 0.7  # measured: max 5, mean 0.638
