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
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)

from cxrdata.sample import _synth, tables
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


@dataclass(frozen=True)
class DicomVariant:
    """How one synthetic DICOM is stored."""

    name: str
    photometric: str
    bits_stored: int
    transfer_syntax: str = ExplicitVRLittleEndian
    window: tuple[float, ...] = ()  # fractions of the modality range used as WindowCenter values
    voi_lut: bool = False
    rescale: tuple[float, float] | None = None  # (RescaleSlope, RescaleIntercept)
    pixel_spacing: bool = True


# Cycled over the non-defect images (train first, then test).
VARIANTS: tuple[DicomVariant, ...] = (
    DicomVariant("mono2_12bit_window", "MONOCHROME2", 12, window=(0.5,)),
    DicomVariant("mono1_14bit_rle", "MONOCHROME1", 14, RLELossless, pixel_spacing=False),
    DicomVariant("mono2_16bit_j2k_rescale", "MONOCHROME2", 16, JPEG2000Lossless, window=(0.5,), rescale=(1.0, -1024.0)),
    DicomVariant("mono1_12bit_voi_lut", "MONOCHROME1", 12, voi_lut=True),
    DicomVariant("mono2_14bit_window_multi", "MONOCHROME2", 14, window=(0.5, 0.45)),
    DicomVariant("mono1_15bit_j2k_window", "MONOCHROME1", 15, JPEG2000Lossless, window=(0.5,)),
    DicomVariant("mono2_13bit_rescale_slope", "MONOCHROME2", 13, RLELossless, rescale=(2.0, -500.0)),
    DicomVariant("mono2_16bit_plain", "MONOCHROME2", 16, pixel_spacing=False),
)
MISSING_TRANSFER_SYNTAX = DicomVariant("defect_missing_transfer_syntax", "MONOCHROME2", 12, window=(0.5,))
NO_PIXEL_DATA = DicomVariant("defect_no_pixel_data", "MONOCHROME1", 12)

# Fixed positions of the defects among the train images.
_OUT_OF_BOUNDS_AT, _MISSING_TS_AT, _NO_PIXELS_AT, _NAN_LABEL_AT = 0, 1, 2, 3
# faults=True: fault name -> the train image it is planted in (test_annotation_row_duplicate: test image 0).
FAULTS = {"annotation_row_duplicate": 4, "label_row_duplicate": 5, "image_labels_conflict": 6, "label_invalid": 7}


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
    train_rows, label_rows, readers, normal = _train_annotations(rng, train_ids, sizes, drawn)
    test_rows, test_labels, test_normal = _test_annotations(rng, test_ids, sizes, drawn)
    oob_id = train_ids[_OUT_OF_BOUNDS_AT]
    oob = next(row for row in train_rows if row[0] == oob_id and row[3] != "")
    width, _ = sizes[oob_id]
    oob[5] = _fmt(width * 1.15)  # x_max well past the right edge: beyond any clipping tolerance
    nan_id, nan_reader, nan_label = train_ids[_NAN_LABEL_AT], readers[train_ids[_NAN_LABEL_AT]][1], "Lung tumor"
    label_index = 2 + IMAGE_LABELS_TRAIN.index(nan_label)
    next(r for r in label_rows if r[0] == nan_id and r[1] == nan_reader)[label_index] = ""
    planted = _plant_faults(rng, train_ids, test_ids, train_rows, label_rows, test_rows) if faults else {}

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
            _write_dicom(path, image_id, sizes[image_id], variant, pixel_rng, drop_ts, drawn[image_id])
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


def _plant_faults(
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


def _train_annotations(
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


def _test_annotations(
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
    return [_fmt(moved[0] * width), _fmt(moved[1] * height), _fmt(moved[2] * width), _fmt(moved[3] * height)]


def _fmt(value: float) -> str:
    """Pixels with 2 decimals, written the way pandas writes a float (``900.96``, ``691.0``)."""
    return repr(round(float(value), 2))


def _write_dicom(
    path: Path,
    image_id: str,
    size: tuple[int, int],
    variant: DicomVariant,
    rng: np.random.Generator,
    drop_transfer_syntax: bool,
    findings: list[tuple[str, Box]],
) -> None:
    """One DX DICOM; stored values follow the variant's photometric convention and rescale."""
    width, height = size
    bits = variant.bits_stored
    top = (1 << bits) - 1
    display = _synth.chest(width, height, rng, findings)  # float in [0, 1], bright = dense (MONOCHROME2 sense)
    value = np.round((0.04 + 0.9 * display) * top)  # the display-sense value in stored units
    stored = top - value if variant.photometric == "MONOCHROME1" else value
    slope, intercept = variant.rescale or (1.0, 0.0)
    if variant.rescale:
        # Stored values are chosen so that stored * slope + intercept spans the modality range.
        stored = np.round(stored / slope)
    pixels = np.clip(stored, 0, top).astype(np.uint16)

    sop_uid = generate_uid(entropy_srcs=[image_id, "sop"])
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.preamble = b"\x00" * 128
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[image_id, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[image_id, "series"])
    ds.Modality = "DX"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    # Fake identifying tags: the pipeline's header whitelist must drop these.
    number = int(image_id[:6], 16)
    ds.PatientName = f"SYNTHETIC^PATIENT{number:08d}"
    ds.PatientID = f"VD{number:08d}"
    ds.PatientBirthDate = f"19{40 + number % 50:02d}0101"
    ds.PatientSex = "MF"[number % 2]
    ds.PatientAge = f"{30 + number % 50:03d}Y"
    ds.InstitutionName = "SYNTHETIC HOSPITAL"
    ds.Rows, ds.Columns = height, width
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = variant.photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if variant.pixel_spacing:
        ds.PixelSpacing = [0.14, 0.14]
        ds.ImagerPixelSpacing = [0.14, 0.14]
    if variant.rescale:
        ds.RescaleSlope = f"{slope:g}"
        ds.RescaleIntercept = f"{intercept:g}"
        ds.RescaleType = "US"
    if variant.window:
        low = float(pixels.min()) * slope + intercept
        high = float(pixels.max()) * slope + intercept
        centres = [round(low + f * (high - low)) for f in variant.window]
        widths = [round((high - low) * (1.0 - 0.2 * i)) for i in range(len(centres))]
        ds.WindowCenter = centres if len(centres) > 1 else centres[0]
        ds.WindowWidth = widths if len(widths) > 1 else widths[0]
    if variant.voi_lut:
        ds.VOILUTSequence = Sequence([_voi_lut_item(bits)])

    if variant is NO_PIXEL_DATA:
        pass
    elif variant.transfer_syntax == ExplicitVRLittleEndian:
        ds.PixelData = pixels.tobytes()
        ds["PixelData"].VR = "OW"
    else:
        ds.compress(variant.transfer_syntax, pixels, generate_instance_uid=False)
    if drop_transfer_syntax:
        del ds.file_meta.TransferSyntaxUID
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=not drop_transfer_syntax, implicit_vr=False, little_endian=True)


def _voi_lut_item(bits: int) -> Dataset:
    """A smooth S-shaped VOI LUT over the stored range, 12-bit output."""
    entries = 1 << bits
    x = np.linspace(-4.0, 4.0, entries)
    curve = np.round(4095 * (1 / (1 + np.exp(-x)))).astype(int)
    item = Dataset()
    item.LUTDescriptor = [entries if entries < 65536 else 0, 0, 12]
    item.LUTExplanation = "SYNTHETIC SIGMOID"
    item.add(DataElement(0x00283006, "US", [int(v) for v in curve]))
    return item
