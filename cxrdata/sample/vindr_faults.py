"""The CSV faults of a hostile VinDr-CXR download, planted into the synthetic sample's rows (``faults=True``)."""

from __future__ import annotations

import numpy as np

from cxrdata.sample import _synth
from cxrdata.sample.vindr_annotations import IMAGE_LABELS_TRAIN

# faults=True: fault name -> the train image it is planted in (test_annotation_row_duplicate: test image 0).
FAULTS = {"annotation_row_duplicate": 4, "label_row_duplicate": 5, "image_labels_conflict": 6, "label_invalid": 7}


def plant_faults(
    rng: np.random.Generator, train_ids: tuple[str, ...], test_ids: tuple[str, ...], train_rows: list[list[str]],
    label_rows: list[list[str]], test_rows: list[list[str]],
) -> dict[str, str]:
    """Add the CSV faults of :data:`FAULTS` to the rows (in place); fault -> image_id."""
    planted = {name: train_ids[at] for name, at in FAULTS.items()}

    def repeat(rows: list[list[str]], image_id: str, boxed: bool, column: int) -> list[str]:
        at = next(k for k, r in enumerate(rows) if r[0] == image_id and (r[column] != "") == boxed)
        rows.insert(at + 1, list(rows[at]))
        return rows[at]

    repeat(train_rows, planted["annotation_row_duplicate"], True, 3)
    test_box = next(r for r in test_rows if r[2] != "")
    planted["test_annotation_row_duplicate"] = test_box[0]
    repeat(test_rows, test_box[0], True, 2)
    repeat(label_rows, planted["label_row_duplicate"], True, 0)
    other = list(repeat(label_rows, planted["image_labels_conflict"], True, 0))
    column = 2 + IMAGE_LABELS_TRAIN.index("COPD")
    label_rows[label_rows.index(other) + 1][column] = "0" if other[column] == "1" else "1"
    next(r for r in label_rows if r[0] == planted["label_invalid"])[2 + IMAGE_LABELS_TRAIN.index("Edema")] = "yes"
    unsafe = {"bad_id_dotdot": f"../test/{test_ids[0]}", "bad_id_slash": f"nested/{_synth.hex_id(rng, 32)}"}
    for name, image_id in unsafe.items():
        planted[name] = image_id
        train_rows.append([image_id, "R1", "Cardiomegaly", "10.0", "20.0", "110.0", "120.0"])
        label_rows.append([image_id, "R1", *("1" if c == "Cardiomegaly" else "0" for c in IMAGE_LABELS_TRAIN)])
    return planted
