"""The CSV rows of the synthetic VinDr-CXR sample: the label vocabulary as the real files spell it, the
findings drawn into each image, and the readers' boxes and image-level labels around them (three
independent readers per train image, one consensus per test image)."""

from __future__ import annotations

import numpy as np

from cxrdata.sample import _synth
from cxrdata.sample._synth import Box

# The 22 local (box) labels, spelled exactly as in the CSVs (irregular capitalisation).
LOCAL_LABELS: tuple[str, ...] = (
    "Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Clavicle fracture",
    "Consolidation", "Edema", "Emphysema", "Enlarged PA", "ILD", "Infiltration", "Lung Opacity",
    "Lung cavity", "Lung cyst", "Mediastinal shift", "Nodule/Mass", "Other lesion", "Pleural effusion",
    "Pleural thickening", "Pneumothorax", "Pulmonary fibrosis", "Rib fracture",
)
NO_FINDING = "No finding"
GLOBAL_LABELS_TRAIN: tuple[str, ...] = ("COPD", "Lung tumor", "Pneumonia", "Tuberculosis", "Other diseases")
# The 28 image-level label columns in the order of the real files ("Other lesion" after "Rib fracture").
IMAGE_LABELS_TRAIN: tuple[str, ...] = (
    *[label for label in LOCAL_LABELS if label != "Other lesion"], "Other lesion",
    *GLOBAL_LABELS_TRAIN, NO_FINDING,
)
# The test file spells one column differently.
IMAGE_LABELS_TEST: tuple[str, ...] = tuple("Other disease" if c == "Other diseases" else c for c in IMAGE_LABELS_TRAIN)
RADIOLOGISTS: tuple[str, ...] = tuple(f"R{i}" for i in range(1, 18))
ANNOTATION_COLUMNS = ("class_name", "x_min", "y_min", "x_max", "y_max")

# Where a synthetic finding of each class is drawn: an ImaGenome anatomical region.
CLASS_REGIONS: dict[str, tuple[str, ...]] = {
    "Aortic enlargement": ("aortic arch",),
    "Atelectasis": ("left lower lung zone", "right lower lung zone"),
    "Calcification": ("right mid lung zone", "aortic arch"),
    "Cardiomegaly": ("cardiac silhouette",),
    "Clavicle fracture": ("left clavicle", "right clavicle"),
    "Consolidation": ("right lower lung zone", "left mid lung zone"),
    "Edema": ("right lung", "left lung"),
    "Emphysema": ("right upper lung zone", "left upper lung zone"),
    "Enlarged PA": ("left hilar structures",),
    "ILD": ("right lower lung zone", "left lower lung zone"),
    "Infiltration": ("right mid lung zone", "left mid lung zone"),
    "Lung Opacity": ("right lower lung zone", "left mid lung zone"),
    "Lung cavity": ("right upper lung zone",),
    "Lung cyst": ("left upper lung zone",),
    "Mediastinal shift": ("upper mediastinum",),
    "Nodule/Mass": ("right mid lung zone", "left upper lung zone"),
    "Other lesion": ("left mid lung zone",),
    "Pleural effusion": ("right costophrenic angle", "left costophrenic angle"),
    "Pleural thickening": ("right apical zone", "left apical zone"),
    "Pneumothorax": ("right apical zone", "left upper lung zone"),
    "Pulmonary fibrosis": ("right upper lung zone", "left lower lung zone"),
    "Rib fracture": ("left mid lung zone", "right lower lung zone"),
}


def train_annotations(
    rng: np.random.Generator, ids: tuple[str, ...], sizes: dict[str, tuple[int, int]],
    drawn: dict[str, list[tuple[str, Box]]],
) -> tuple[list[list[str]], list[list[str]], dict[str, tuple[str, ...]], list[str]]:
    """Three independent readers per image; every 4th image normal; one reader disagrees on some."""
    rows: list[list[str]] = []
    label_rows: list[list[str]] = []
    readers: dict[str, tuple[str, ...]] = {}
    normal: list[str] = []
    for index, image_id in enumerate(ids):
        width, height = sizes[image_id]
        trio = tuple(str(r) for r in rng.choice(RADIOLOGISTS, size=3, replace=False))
        readers[image_id] = trio
        is_normal = index % 4 == 3
        findings = [] if is_normal else _pick_findings(rng, width, height)
        drawn[image_id] = findings
        if is_normal:
            normal.append(image_id)
        global_label = None if is_normal or index % 3 else str(rng.choice(GLOBAL_LABELS_TRAIN))
        for k, reader in enumerate(trio):
            # The third reader of every 4th-from-2 image sees nothing: reader disagreement.
            seen = [] if index % 4 == 2 and k == 2 else findings
            if not seen:
                rows.append([image_id, reader, NO_FINDING, "", "", "", ""])
            for class_name, region_box in seen:
                box = _jitter(rng, region_box, width, height)
                rows.append([image_id, reader, class_name, *box])
            labels = {name for name, _ in seen} | ({global_label} if global_label and seen else set())
            if not seen:
                labels = {NO_FINDING}
            label_rows.append([image_id, reader, *("1" if c in labels else "0" for c in IMAGE_LABELS_TRAIN)])
    return rows, label_rows, readers, normal


def test_annotations(
    rng: np.random.Generator, ids: tuple[str, ...], sizes: dict[str, tuple[int, int]],
    drawn: dict[str, list[tuple[str, Box]]],
) -> tuple[list[list[str]], list[list[str]], list[str]]:
    """Consensus labels: one set of boxes per image, no reader."""
    rows: list[list[str]] = []
    label_rows: list[list[str]] = []
    normal: list[str] = []
    for index, image_id in enumerate(ids):
        width, height = sizes[image_id]
        findings = [] if index % 2 else _pick_findings(rng, width, height)
        drawn[image_id] = findings
        if not findings:
            normal.append(image_id)
            rows.append([image_id, NO_FINDING, "", "", "", ""])
        for class_name, region_box in findings:
            rows.append([image_id, class_name, *_jitter(rng, region_box, width, height)])
        labels = {name for name, _ in findings} or {NO_FINDING}
        if findings and index % 4 == 0:
            labels.add("Other disease")
        label_rows.append([image_id, *("1" if c in labels else "0" for c in IMAGE_LABELS_TEST)])
    return rows, label_rows, normal


def _pick_findings(rng: np.random.Generator, width: int, height: int) -> list[tuple[str, Box]]:
    """One or two local findings, each with the canonical box the readers draw around."""
    count = int(rng.integers(1, 3))
    names = [str(n) for n in rng.choice(LOCAL_LABELS, size=count, replace=False)]
    anatomy = _synth.anatomy(width, height)
    findings = []
    for name in names:
        regions = CLASS_REGIONS[name]
        region = anatomy[regions[int(rng.integers(len(regions)))]]
        findings.append((name, _synth.sub_box(rng, region)))
    return findings


def _jitter(
    rng: np.random.Generator, box: Box, width: int, height: int
) -> list[str]:
    """One reader's version of a box: corners moved by up to 8% of its size, kept inside the image."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * 0.08, (y1 - y0) * 0.08
    moved = np.array([x0, y0, x1, y1]) + rng.uniform(-1, 1, 4) * np.array([dx, dy, dx, dy])
    moved = np.clip(moved, 0.0, 1.0)
    return [pixel_text(v * side) for v, side in zip(moved, (width, height, width, height), strict=True)]


def pixel_text(value: float) -> str:
    """Pixels with 2 decimals, written the way pandas writes a float (``900.96``, ``691.0``)."""
    return repr(round(float(value), 2))
