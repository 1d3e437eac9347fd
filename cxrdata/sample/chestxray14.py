"""A synthetic NIH ChestX-ray14 download in the real on-disk layout (docs/formats/chestxray14.md).

Layout written under ``out`` (the dataset root)::

    Data_Entry_2017.csv            (data_entry="2017") or Data_Entry_2017_v2020.csv (data_entry="v2020")
    BBox_List_2017.csv             Image Index,Finding Label,Bbox [x,y,w,h],,,   (xywh pixels of the 1024 grid)
    train_val_list.txt, test_list.txt   one Image Index a line, sorted, no newline after the last
    images_001/images/*.png ...    (layout="kaggle", Kaggle's folders) or images/*.png (layout="nih", the
                                   NIH archives unpacked)

The 2017 table is written as the original release spells it: the bracketed headers
``OriginalImage[Width,Height]`` and ``OriginalImagePixelSpacing[x,y]`` that split into two CSV columns
each, a trailing comma after the header (an unnamed twelfth column), CRLF line ends, zero-padded
``Follow-up #`` (``000``) and ``Patient ID`` (``00000001``), ages as ``058Y`` (and ``011M`` in months, and
one implausible ``412Y``). The v2020 table has plain integers, LF line ends and pixel spacings written
with binary-float noise (``0.14300000000000002``). Patients are split between the lists; every box is on a
test image, as in the release.

Deliberate defects (:attr:`ChestXray14Sample.faults`): an RGBA PNG (gray channels, opaque alpha), a box
labelled ``Infiltrate`` on an image labelled ``Infiltration``, a box row repeated verbatim, a box row for an
image that no Data_Entry row lists, an image (with a box) in neither split list, and a Data_Entry row
whose PNG is missing. Pictures are rendered at 256 px and enlarged to ``size`` (1024 like the release by
default), findings drawn inside their boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from cxrdata.recipe import option
from cxrdata.sample import _synth, tables

BOX_GRID = 1024  # the release's PNGs are 1024 x 1024 and the boxes are pixels of that grid
DATA_ENTRY_HEADER = ("Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age", "Patient Gender",
                     "View Position", "OriginalImage[Width,Height]", "OriginalImagePixelSpacing[x,y]")
BBOX_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,"
LIST_FILES = {"train": "train_val_list.txt", "test": "test_list.txt"}
# Where a finding of each box class is drawn (an ImaGenome region of the renderer) and how it is drawn.
CLASS_REGIONS: dict[str, tuple[str, ...]] = {
    "Atelectasis": ("left lower lung zone", "right lower lung zone"),
    "Cardiomegaly": ("cardiac silhouette",),
    "Effusion": ("right costophrenic angle", "left costophrenic angle"),
    "Infiltration": ("right mid lung zone", "left mid lung zone"),
    "Mass": ("right mid lung zone",),
    "Nodule": ("left upper lung zone",),
    "Pneumonia": ("right lower lung zone", "left mid lung zone"),
    "Pneumothorax": ("right apical zone", "left upper lung zone"),
}
DRAWN_AS = {"Effusion": "Pleural effusion", "Pneumonia": "pneumonia", "Mass": "Lung Opacity",
            "Nodule": "Lung Opacity"}
# (patient, follow-ups, list) -> each image's labels; boxes: image -> box classes (spelled as BBox_List does)
PATIENTS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "train", ("Cardiomegaly", "Cardiomegaly|Emphysema", "Cardiomegaly|Effusion")),
    (2, "train", ("No Finding",)),
    (3, "train", ("Hernia", "Hernia|Infiltration")),
    (4, "train", ("No Finding", "Nodule")),
    (5, "test", ("Effusion|Infiltration", "Atelectasis|Effusion", "No Finding")),
    (6, "test", ("Cardiomegaly|Pneumonia", "Mass|Nodule")),
    (7, "test", ("Pneumothorax", "Atelectasis|Consolidation")),
)
BOXES: dict[str, tuple[str, ...]] = {
    "00000005_000.png": ("Effusion", "Infiltrate"),
    "00000005_001.png": ("Atelectasis",),
    "00000006_000.png": ("Cardiomegaly", "Pneumonia"),
    "00000006_001.png": ("Mass", "Nodule"),
    "00000007_000.png": ("Pneumothorax",),
    "00000007_001.png": ("Atelectasis",),
}
FAULTS = {
    "rgba": "00000006_000.png",  # saved as RGBA (gray channels, opaque alpha)
    "infiltrate": "00000005_000.png",  # its box says Infiltrate, its labels Infiltration
    "duplicate_box": "00000007_000.png",  # its box row is written twice
    "unlisted": "00000007_001.png",  # in Data_Entry and BBox_List, in neither split list
    "missing_image": "00000004_001.png",  # its PNG is not there
    "orphan_box": "00000099_000.png",  # a box row for an image no Data_Entry row lists
    "age_in_months": "00000002_000.png",  # 2017 table: 011M
    "age_implausible": "00000003_001.png",  # 2017 table: 412Y (v2020: its real age)
}
ACQUIRED = ((2500, 2048, 0.168), (2992, 2991, 0.143), (3056, 2544, 0.139), (2048, 2500, 0.171))
V2020_SPACING = {0.143: "0.14300000000000002"}  # how the v2020 table writes this spacing


@dataclass(frozen=True)
class SampleOptions:
    """``cxrdata sample-data chestxray14``: which of the real variants to write."""

    layout: Literal["kaggle", "nih"] = option("kaggle", "Image folders: images_001/images/... (Kaggle) or images/ "
                                                        "(NIH's archives unpacked).", choices=("kaggle", "nih"))
    data_entry: Literal["2017", "v2020"] = option(
        "2017", "Data_Entry_2017.csv as first released, or NIH's corrected Data_Entry_2017_v2020.csv.",
        choices=("2017", "v2020"))


@dataclass(frozen=True)
class ChestXray14Sample:
    """What was written, with the Image Index of every deliberate defect."""

    root: Path
    layout: str
    data_entry: Path
    image_ids: tuple[str, ...]  # every Data_Entry row, in file order
    splits: dict[str, str | None]  # Image Index -> train / test (None: in neither list)
    labels: dict[str, tuple[str, ...]]  # Image Index -> Finding Labels, split at |
    ages: dict[str, int | None]  # Image Index -> age in completed years as the table states it (None: implausible)
    boxes: dict[str, list[tuple[str, tuple[float, float, float, float]]]]  # image -> (label as written, xywh)
    box_rows: int  # rows of BBox_List_2017.csv, the duplicate and the orphan included
    image_files: dict[str, Path]  # Image Index -> its PNG (the missing one excluded)
    size: int
    faults: dict[str, str] = field(default_factory=lambda: dict(FAULTS))

    def summary(self) -> str:
        counts = {s: sum(1 for v in self.splits.values() if v == s) for s in ("train", "test")}
        return (f"wrote {len(self.image_ids)} Data_Entry rows ({counts['train']} train_val, {counts['test']} test), "
                f"{self.box_rows} box rows and {len(self.image_files)} PNGs ({self.layout} layout) to {self.root}")


def write_chestxray14_sample(out: Path | str, seed: int = 0, layout: str = "kaggle", data_entry: str = "2017",
                             size: int = BOX_GRID) -> ChestXray14Sample:
    """Write a synthetic ChestX-ray14 tree under ``out``; byte-identical for the same arguments."""
    if layout not in ("kaggle", "nih") or data_entry not in ("2017", "v2020"):
        raise ValueError("layout is kaggle or nih, data_entry 2017 or v2020")
    root = Path(out)
    rng = np.random.default_rng([seed, 14])
    images = [(f"{patient:08d}_{k:03d}.png", patient, k, split, labels.split("|"))
              for patient, split, per_image in PATIENTS for k, labels in enumerate(per_image)]
    drawn = {name: _draw_boxes(rng, name) for name in BOXES}
    first_age = {patient: int(rng.integers(18, 85)) for patient, _, _ in PATIENTS}
    ages = {name: first_age[patient] + k for name, patient, k, _, _ in images}
    files = [_write_data_entry(root, images, ages, data_entry, rng)]
    files.append(_write_boxes(root, drawn))
    splits = {name: (None if name == FAULTS["unlisted"] else split) for name, _, _, split, _ in images}
    for split, rel in LIST_FILES.items():
        names = sorted(name for name, s in splits.items() if s == split)
        files.append(tables.write(root / rel, "\n".join(names).encode()))
    image_files: dict[str, Path] = {}
    for index, (name, _, _, _, _) in enumerate(images):
        if name == FAULTS["missing_image"]:
            continue
        folder = root / (f"images_{1 + index // 6:03d}/images" if layout == "kaggle" else "images")
        image_files[name] = _write_png(folder / name, rng, drawn.get(name, []), size, rgba=name == FAULTS["rgba"])
    stated = dict(ages)
    if data_entry == "2017":
        stated[FAULTS["age_in_months"]] = 0
        stated[FAULTS["age_implausible"]] = None
    return ChestXray14Sample(
        root=root, layout=layout, data_entry=files[0], image_ids=tuple(name for name, *_ in images), splits=splits,
        labels={name: tuple(labels) for name, _, _, _, labels in images}, ages=stated,
        boxes={name: [(label, xywh) for label, xywh, _ in rows] for name, rows in drawn.items()},
        box_rows=sum(len(rows) for rows in drawn.values()) + 2, image_files=image_files, size=size)


def _draw_boxes(rng: np.random.Generator, name: str) -> list[tuple[str, tuple[float, float, float, float], _synth.Box]]:
    """(label as written, xywh on the 1024 grid, canonical box) for each box of an image."""
    anatomy = _synth.anatomy(BOX_GRID, BOX_GRID)
    out = []
    for label in BOXES[name]:
        regions = CLASS_REGIONS["Infiltration" if label == "Infiltrate" else label]
        box = _synth.sub_box(rng, anatomy[regions[int(rng.integers(len(regions)))]])
        x0, y0, x1, y1 = (v * BOX_GRID for v in box)
        out.append((label, (x0, y0, x1 - x0, y1 - y0), box))
    return out


def _write_data_entry(root: Path, images: list, ages: dict[str, int], variant: str, rng: np.random.Generator) -> Path:
    rows = []
    for name, patient, follow_up, _, labels in images:
        width, height, spacing = ACQUIRED[int(rng.integers(len(ACQUIRED)))]
        view = "AP" if rng.random() < 0.4 else "PA"
        sex = "MF"[patient % 2]
        if variant == "2017":
            age = {FAULTS["age_in_months"]: "011M", FAULTS["age_implausible"]: "412Y"}.get(name, f"{ages[name]:03d}Y")
            rows.append([name, "|".join(labels), f"{follow_up:03d}", f"{patient:08d}", age, sex, view, width, height,
                         spacing, spacing])
        else:
            noisy = V2020_SPACING.get(spacing, repr(spacing))
            rows.append([name, "|".join(labels), follow_up, patient, ages[name], sex, view, width, height, noisy,
                         noisy])
    # The header is written as is: its bracketed names hold commas and are not quoted, so they split in two.
    header = ",".join(DATA_ENTRY_HEADER) + ("," if variant == "2017" else "")
    body = tables.csv_bytes([], rows).decode().partition("\n")[2]
    if variant == "2017":
        return tables.write(root / "Data_Entry_2017.csv", f"{header}\n{body}".replace("\n", "\r\n").encode())
    return tables.write(root / "Data_Entry_2017_v2020.csv", f"{header}\n{body}".encode())


def _write_boxes(root: Path, drawn: dict[str, list]) -> Path:
    lines = [BBOX_HEADER]
    for name, rows in drawn.items():
        for label, xywh, _ in rows:
            lines.append(",".join([name, label, *(f"{v:.15g}" for v in xywh)]))
            if name == FAULTS["duplicate_box"]:
                lines.append(lines[-1])
    lines.append(f"{FAULTS['orphan_box']},Nodule,400.5,300.25,60,50")
    return tables.write(root / "BBox_List_2017.csv", ("\n".join(lines) + "\n").encode())


def _write_png(path: Path, rng: np.random.Generator, boxes: list, size: int, rgba: bool) -> Path:
    findings = [(DRAWN_AS.get(label, "Infiltration" if label == "Infiltrate" else label), box)
                for label, _, box in boxes]
    picture = _synth.chest(256, 256, rng, findings)
    pixels = cv2.resize(np.clip(picture * 255.0, 0, 255).astype(np.uint8), (size, size),
                        interpolation=cv2.INTER_LINEAR)
    if rgba:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGRA)
    ok, data = cv2.imencode(".png", pixels)
    assert ok
    return tables.write(path, data.tobytes())
