"""The DICOM files of the synthetic VinDr-CXR sample: every storage variant a reader must survive
(photometric, bit depth, transfer syntax, window / VOI LUT / rescale) and the two defective files."""

from __future__ import annotations

from dataclasses import dataclass
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

from cxrdata.sample import _synth
from cxrdata.sample._synth import Box


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


def write_dicom(
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
