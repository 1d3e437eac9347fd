"""A synthetic VinDr-CXR 1.0.0 download in the real on-disk format (FORMATS.md section 4).

Layout written under ``out`` (the dataset root, i.e. the folder that holds ``annotations/``)::

    annotations/annotations_train.csv   image_id,rad_id,class_name,x_min,y_min,x_max,y_max (3 readers per image)
    annotations/annotations_test.csv    consensus boxes; header ``rad_ID`` by default (see below)
    annotations/image_labels_train.csv  image_id,rad_id + 28 labels ("Other diseases"), 3 consecutive rows per image
    annotations/image_labels_test.csv   image_id + 28 labels ("Other disease"), no rad_id
    train/<32-hex>.dicom, test/<32-hex>.dicom

The rad_id question of annotations_test.csv is unresolved (FORMATS.md, open question 2). Our choice:
the test file carries a reader column spelled ``rad_ID`` (the spelling RadVLM renames) with **empty**
cells, because the test labels are a consensus of five readers and no single reader id applies.
``test_rad_column`` writes the other variants (``"rad_id"`` or ``None`` for no column) so that readers
can be tested on all three.

Every DICOM variant a reader must survive is in :data:`VARIANTS` (photometric, bit depth, transfer
syntax, window / VOI LUT / rescale), plus two defects: a file whose file meta lacks
``TransferSyntaxUID`` and a file with no PixelData.

``faults=True`` adds the CSV defects of a hostile download (:data:`FAULTS`, each named in
:attr:`VindrSample.faults`): an annotation row and a label row repeated verbatim, two different
label rows of one reader for one image, a label cell ``yes``, and image ids that would name a path
outside ``train/`` (``../test/<a test image>``, which is a real file, and ``nested/<id>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cxrdata.sample import _synth, tables
from cxrdata.sample._synth import Box
from cxrdata.sample.vindr_annotations import (
    ANNOTATION_COLUMNS,
    IMAGE_LABELS_TEST,
    IMAGE_LABELS_TRAIN,
    LOCAL_LABELS,
    NO_FINDING,
    pixel_text,
    test_annotations,
    train_annotations,
)
from cxrdata.sample.vindr_dicom import MISSING_TRANSFER_SYNTAX, NO_PIXEL_DATA, VARIANTS, write_dicom
from cxrdata.sample.vindr_faults import plant_faults

__all__ = ["ANNOTATION_COLUMNS", "IMAGE_LABELS_TEST", "IMAGE_LABELS_TRAIN", "LOCAL_LABELS", "NO_FINDING", "VindrSample",
           "write_vindr_sample"]

# Fixed positions of the defects among the train images.
_OUT_OF_BOUNDS_AT, _MISSING_TS_AT, _NO_PIXELS_AT, _NAN_LABEL_AT = 0, 1, 2, 3


@dataclass(frozen=True)
class VindrSample:
    """What was written, with the ids of every deliberate defect."""

    root: Path
    train_ids: tuple[str, ...]
    test_ids: tuple[str, ...]
    image_sizes: dict[str, tuple[int, int]]  # image_id -> (width, height) = (Columns, Rows)
    variants: dict[str, str]  # image_id -> DicomVariant.name
    readers: dict[str, tuple[str, ...]]  # train image_id -> its 3 rad_ids, in row order
    normal_ids: tuple[str, ...]  # images where every reader wrote "No finding"
    annotation_rows_train: int
    annotation_rows_test: int
    boxes_train: int  # rows with coordinates, the out-of-bounds defect included
    boxes_test: int
    no_finding_rows_train: int
    no_finding_rows_test: int
    test_rad_column: str | None
    out_of_bounds: tuple[str, str, str]  # (image_id, rad_id, class_name) of the box past the image edge
    missing_transfer_syntax: str  # image_id
    no_pixel_data: str  # image_id
    nan_label: tuple[str, str, str]  # (image_id, rad_id, label column) left empty in image_labels_train
    files: list[Path] = field(default_factory=list)
    # faults=True: fault -> image_id (FAULTS, "test_annotation_row_duplicate", "bad_id_dotdot", "bad_id_slash")
    faults: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return f"wrote {len(self.train_ids)} train and {len(self.test_ids)} test DICOMs to {self.root}"


def write_vindr_sample(
    out: Path | str,
    images: int = 8,
    test_images: int = 4,
    seed: int = 0,
    full_size: bool = False,
    test_rad_column: str | None = "rad_ID",
    faults: bool = False,
) -> VindrSample:
    """Write a synthetic VinDr-CXR tree under ``out``; byte-identical for the same arguments.

    ``images``/``test_images``: train/test image counts (at least 4 and 1: the defects need room;
    8 with ``faults``). ``full_size``: real-sized images (2,000-3,000 px) instead of 256-512 px.
    """
    if images < 4 or test_images < 1 or (faults and images < 8):
        raise ValueError("write_vindr_sample needs at least 4 train images (8 with faults) and 1 test image")
    root = Path(out)
    rng = np.random.default_rng([seed, 4])
    pixel_rng = np.random.default_rng([seed, 4, 1])  # pictures draw from their own stream
    train_ids = tuple(_synth.hex_id(rng, 32) for _ in range(images))
    test_ids = tuple(_synth.hex_id(rng, 32) for _ in range(test_images))
    sizes = {image_id: _synth.image_size(rng, full_size) for image_id in (*train_ids, *test_ids)}

    drawn: dict[str, list[tuple[str, Box]]] = {}  # image_id -> findings drawn into its picture
    train_rows, label_rows, readers, normal = train_annotations(rng, train_ids, sizes, drawn)
    test_rows, test_labels, test_normal = test_annotations(rng, test_ids, sizes, drawn)
    oob_id = train_ids[_OUT_OF_BOUNDS_AT]
    oob = next(row for row in train_rows if row[0] == oob_id and row[3] != "")
    width, _ = sizes[oob_id]
    oob[5] = pixel_text(width * 1.15)  # x_max well past the right edge: beyond any clipping tolerance
    nan_id, nan_reader, nan_label = train_ids[_NAN_LABEL_AT], readers[train_ids[_NAN_LABEL_AT]][1], "Lung tumor"
    label_index = 2 + IMAGE_LABELS_TRAIN.index(nan_label)
    next(r for r in label_rows if r[0] == nan_id and r[1] == nan_reader)[label_index] = ""
    planted = plant_faults(rng, train_ids, test_ids, train_rows, label_rows, test_rows) if faults else {}

    ann = root / "annotations"
    test_header = ("image_id", *([test_rad_column] if test_rad_column else []), *ANNOTATION_COLUMNS)
    test_rows_out = [[r[0], *([""] if test_rad_column else []), *r[1:]] for r in test_rows]
    files = [
        tables.write_csv(ann / "annotations_train.csv", ("image_id", "rad_id", *ANNOTATION_COLUMNS), train_rows),
        tables.write_csv(ann / "annotations_test.csv", test_header, test_rows_out),
        tables.write_csv(ann / "image_labels_train.csv", ("image_id", "rad_id", *IMAGE_LABELS_TRAIN), label_rows),
        tables.write_csv(ann / "image_labels_test.csv", ("image_id", *IMAGE_LABELS_TEST), test_labels),
    ]

    variants: dict[str, str] = {}
    cycle = 0
    for split, ids in (("train", train_ids), ("test", test_ids)):
        for index, image_id in enumerate(ids):
            variant = VARIANTS[cycle % len(VARIANTS)]
            drop_ts = split == "train" and index == _MISSING_TS_AT
            if drop_ts:
                variant = MISSING_TRANSFER_SYNTAX
            elif split == "train" and index == _NO_PIXELS_AT:
                variant = NO_PIXEL_DATA
            else:
                cycle += 1
            path = root / split / f"{image_id}.dicom"
            write_dicom(path, image_id, sizes[image_id], variant, pixel_rng, drop_ts, drawn[image_id])
            variants[image_id] = variant.name
            files.append(path)

    return VindrSample(
        root=root,
        train_ids=train_ids,
        test_ids=test_ids,
        image_sizes=sizes,
        variants=variants,
        readers=readers,
        normal_ids=(*normal, *test_normal),
        annotation_rows_train=len(train_rows),
        annotation_rows_test=len(test_rows),
        boxes_train=sum(1 for r in train_rows if r[3] != ""),
        boxes_test=sum(1 for r in test_rows if r[2] != ""),
        no_finding_rows_train=sum(1 for r in train_rows if r[2] == NO_FINDING),
        no_finding_rows_test=sum(1 for r in test_rows if r[1] == NO_FINDING),
        test_rad_column=test_rad_column,
        out_of_bounds=(oob_id, oob[1], oob[2]),
        missing_transfer_syntax=train_ids[_MISSING_TS_AT],
        no_pixel_data=train_ids[_NO_PIXELS_AT],
        nan_label=(nan_id, nan_reader, nan_label),
        files=files,
        faults=planted,
    )
