"""DICOM decoding: pixel values through modality LUT → VOI → MONOCHROME1, codecs, rejects, privacy."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import get_encoder
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from cxrdata.errors import Rejected
from cxrdata.imaging.dicom import HEADER_FIELDS, decode_dicom

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def make_ds(
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    **elements: object,
) -> Dataset:
    """A minimal DX-like dataset holding ``pixels`` (uint16/int16) natively."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 * pixels.dtype.itemsize
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = int(pixels.dtype.kind == "i")
    if pixels.ndim == 3:
        ds.NumberOfFrames = pixels.shape[0]
    for name, value in elements.items():
        setattr(ds, name, value)
    ds.PixelData = pixels.tobytes()
    return ds


def to_bytes(ds: Dataset, compress: str | None = None) -> bytes:
    if compress:
        ds.compress(compress)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def ramp(low: int, high: int, width: int = 16) -> np.ndarray:
    """A (n, width) uint16 image whose row i holds the value low + i."""
    return np.repeat(np.arange(low, high + 1, dtype=np.uint16)[:, None], width, axis=1)


def chest_like(height: int = 96, width: int = 80, seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    image = 1800 + 1200 * np.sin(x / 17.0) * np.cos(y / 23.0) + rng.normal(0, 30, (height, width))
    return np.clip(image, 0, 4095).astype(np.uint16)


def row_values(image: np.ndarray) -> np.ndarray:
    assert (image == image[:, :1]).all()
    return image[:, 0].astype(int)


# --- VOI: window, VOI LUT, min-max -------------------------------------------------------


def test_linear_window_maps_edges_to_0_and_255() -> None:
    center, width = 2048, 1000
    image = decode_dicom(to_bytes(make_ds(ramp(1400, 2700), WindowCenter=center, WindowWidth=width)))
    out = dict(zip(range(1400, 2701), row_values(image.pixels), strict=True))
    assert image.voi == "window"
    assert out[center - width // 2] == 0  # C - W/2 → 0
    assert out[center + width // 2] == 255  # C + W/2 → 255
    assert out[1400] == 0 and out[2700] == 255  # clipped outside the window
    assert out[center] == round(((center - (center - 0.5)) / (width - 1) + 0.5) * 255)  # PS3.3 C.11.2.1.2.1
    assert all(np.diff(row_values(image.pixels)) >= 0)


def test_first_of_multivalued_window_is_used() -> None:
    ds = make_ds(ramp(0, 4095), WindowCenter=[1000, 3000], WindowWidth=[200, 10])
    out = row_values(decode_dicom(to_bytes(ds)).pixels)
    assert out[900] == 0 and out[1100] == 255 and 0 < out[1000] < 255


@pytest.mark.parametrize("function", ["LINEAR_EXACT", "SIGMOID"])
def test_voi_lut_function_is_honoured(function: str) -> None:
    ds = make_ds(ramp(0, 4095), WindowCenter=2000, WindowWidth=400, VOILUTFunction=function)
    out = row_values(decode_dicom(to_bytes(ds)).pixels)
    assert out[2000] in (127, 128)  # 127.5
    if function == "LINEAR_EXACT":
        assert out[1800] == 0 and out[2200] == 255 and out[1900] == round(0.25 * 255)
    else:  # 255 / (1 + exp(-4 (x - c) / w))
        assert out[2100] == round(255 / (1 + np.exp(-1)))
        assert out[0] == 0 and out[4095] == 255


def test_rescale_is_applied_before_the_window() -> None:
    # modality value = 2 * stored - 1000; window C=0, W=1000 covers modality -500..500 = stored 250..750
    ds = make_ds(ramp(0, 1000), RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=0, WindowWidth=1000)
    out = row_values(decode_dicom(to_bytes(ds)).pixels)
    assert out[250] == 0 and out[750] == 255
    assert out[249] == 0 and out[751] == 255 and 120 <= out[500] <= 135


def test_minmax_without_window_spans_the_stored_range() -> None:
    ds = make_ds(ramp(100, 1123), RescaleSlope=1, RescaleIntercept=-1024)
    image = decode_dicom(to_bytes(ds))
    out = row_values(image.pixels)
    assert image.voi == "minmax"
    assert out[0] == 0 and out[-1] == 255 and out[512] == round(512 * 255 / 1023)


def test_voi_lut_sequence_is_applied_and_preferred_to_the_window() -> None:
    first, entries = 1000, 256
    lut = np.round(4095 * (np.arange(entries) / (entries - 1)) ** 2).astype(int)
    item = Dataset()
    item.LUTDescriptor = [entries, first, 12]
    item.add_new(0x00283006, "US", lut.tolist())  # LUT Data
    ds = make_ds(ramp(900, 1300), WindowCenter=100, WindowWidth=10)
    ds.VOILUTSequence = Sequence([item])
    image = decode_dicom(to_bytes(ds))
    out = row_values(image.pixels)
    assert image.voi == "voi_lut"
    expected = np.round(lut * 255 / 4095).astype(int)
    assert (out[100:356] == expected).all()  # stored 1000..1255 → LUT entries 0..255
    assert (out[:100] == expected[0]).all() and (out[356:] == expected[-1]).all()


def test_monochrome1_inverts_so_air_is_dark() -> None:
    pixels = chest_like()
    pixels[:10] = 4000  # high stored values are air in MONOCHROME1
    mono1 = decode_dicom(to_bytes(make_ds(pixels, "MONOCHROME1"))).pixels
    mono2 = decode_dicom(to_bytes(make_ds(pixels, "MONOCHROME2"))).pixels
    assert (mono1[:10] == 0).all()
    assert (mono1.astype(int) == 255 - mono2.astype(int)).all()
    windowed = decode_dicom(to_bytes(make_ds(ramp(0, 4095), "MONOCHROME1", WindowCenter=2048, WindowWidth=1000)))
    out = row_values(windowed.pixels)
    assert out[1548] == 255 and out[2548] == 0


# --- display: strict window, or window then stretch (FORMATS.md 4.2) -----------------------


def _window_level(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 LINEAR window as float grey levels (written out here, not imported)."""
    y = ((x - (center - 0.5)) / (width - 1) + 0.5) * 255.0
    return np.clip(y, 0.0, 255.0)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_stretch_fills_0_to_255_after_a_window_wider_than_the_image(photometric: str) -> None:
    ds = make_ds(ramp(1000, 2000), photometric, WindowCenter=2048, WindowWidth=4096)
    window = decode_dicom(to_bytes(ds), display="window")
    stretch = decode_dicom(to_bytes(ds))  # the default
    assert (window.display, stretch.display) == ("window", "stretch") and window.voi == stretch.voi == "window"
    levels = _window_level(np.arange(1000, 2001, dtype=np.float64), 2048, 4096)
    if photometric == "MONOCHROME1":
        levels = 255.0 - levels
    assert (row_values(window.pixels) == np.rint(levels)).all()
    # by hand: ((1000 - 2047.5) / 4095 + 0.5) * 255 = 62.27 and ((2000 - 2047.5) / 4095 + 0.5) * 255 = 124.54
    low_high = (62, 125) if photometric == "MONOCHROME2" else (130, 193)
    assert (row_values(window.pixels).min(), row_values(window.pixels).max()) == low_high
    stretched = (levels - levels.min()) / (levels.max() - levels.min()) * 255.0
    assert (row_values(stretch.pixels) == np.rint(stretched)).all()
    assert row_values(stretch.pixels)[0] == (0 if photometric == "MONOCHROME2" else 255)


def test_stretch_uses_the_grey_levels_present_not_the_stored_range() -> None:
    """Only the values in the image count: one outlier at 4000 sets the top, not BitsStored."""
    pixels = ramp(1000, 1100)
    pixels[0, 0] = 4000
    ds = make_ds(pixels, WindowCenter=2000, WindowWidth=4000)
    out = decode_dicom(to_bytes(ds)).pixels
    assert out[0, 0] == 255 and out[0, 1] == 0
    low, mid, high = _window_level(np.array([1000.0, 1100.0, 4000.0]), 2000, 4000)
    assert out[100, 1] == round((mid - low) / (high - low) * 255)


def test_stretch_after_a_non_monotone_voi_lut_uses_only_the_values_present() -> None:
    """A tent-shaped LUT: the image holds stored 0, 64 and 255 only, so its top level is LUT(64), not LUT(128)."""
    lut = np.concatenate([np.linspace(0, 4095, 129), np.linspace(4095, 0, 128)[1:]]).round().astype(int)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 12]
    item.add_new(0x00283006, "US", lut.tolist())
    pixels = np.array([[0, 64, 255]] * 4, np.uint8)
    ds = make_ds(pixels, bits_stored=8)
    ds.VOILUTSequence = Sequence([item])
    window = decode_dicom(to_bytes(ds), display="window").pixels[0]
    stretch = decode_dicom(to_bytes(ds)).pixels[0]
    assert window.tolist() == [0, round(lut[64] * 255 / 4095), 0]
    assert stretch.tolist() == [0, 255, 0]


def test_stretch_of_a_one_level_image_leaves_it_as_windowed() -> None:
    ds = make_ds(np.full((8, 8), 3000, np.uint16), WindowCenter=1000, WindowWidth=100)
    assert (decode_dicom(to_bytes(ds)).pixels == 255).all()  # above the window; nothing to stretch


def test_unknown_display_is_a_caller_error_not_a_reject() -> None:
    with pytest.raises(ValueError, match="DICOM display must be one of stretch, window, not 'minmax'"):
        decode_dicom(to_bytes(make_ds(chest_like())), display="minmax")


# --- bit depths and storage ----------------------------------------------------------------


def test_12_bit_in_16_ignores_the_unused_high_bits() -> None:
    clean = chest_like()
    dirty = clean | np.uint16(0xA000)  # overlay-style junk in bits 13 and 15
    expected = decode_dicom(to_bytes(make_ds(clean))).pixels
    assert (decode_dicom(to_bytes(make_ds(dirty))).pixels == expected).all()
    assert expected.min() == 0 and expected.max() == 255


def test_signed_pixels_with_window() -> None:
    values = np.repeat(np.arange(-1024, 1024, dtype=np.int16)[:, None], 4, axis=1)
    ds = make_ds(values, bits_stored=16, WindowCenter=0, WindowWidth=400)
    out = dict(zip(range(-1024, 1024), row_values(decode_dicom(to_bytes(ds)).pixels), strict=True))
    assert out[-200] == 0 and out[200] == 255 and out[-1024] == 0 and 120 <= out[0] <= 135


def test_8_bit_storage() -> None:
    pixels = np.repeat(np.arange(10, 200, dtype=np.uint8)[:, None], 3, axis=1)
    out = row_values(decode_dicom(to_bytes(make_ds(pixels, bits_stored=8))).pixels)
    assert out[0] == 0 and out[-1] == 255


def test_multiframe_uses_the_first_frame() -> None:
    frames = np.stack([ramp(0, 63), ramp(0, 63)[::-1]])
    out = row_values(decode_dicom(to_bytes(make_ds(frames))).pixels)
    assert out[0] == 0 and out[-1] == 255


# --- compressed transfer syntaxes ----------------------------------------------------------


def _encodable(syntax: str) -> bool:
    return get_encoder(syntax).is_available


@pytest.mark.parametrize(
    "syntax",
    [
        RLELossless,
        pytest.param(JPEG2000Lossless, marks=pytest.mark.skipif(not _encodable(JPEG2000Lossless), reason="no encoder")),
        pytest.param(JPEGLSLossless, marks=pytest.mark.skipif(not _encodable(JPEGLSLossless), reason="no encoder")),
    ],
)
def test_lossless_compression_decodes_identically(syntax: str) -> None:
    pixels = chest_like()
    native = decode_dicom(to_bytes(make_ds(pixels, WindowCenter=1800, WindowWidth=2000)))
    compressed = decode_dicom(to_bytes(make_ds(pixels, WindowCenter=1800, WindowWidth=2000), compress=syntax))
    assert compressed.header["TransferSyntaxUID"] == syntax
    assert (compressed.pixels == native.pixels).all()


@pytest.mark.parametrize("infer", [False, True])
def test_grayscale_jpeg_baseline_pixel_data(infer: bool) -> None:
    y, x = np.mgrid[0:64, 0:80]
    pixels = np.clip(128 + 100 * np.sin(x / 9) * np.cos(y / 11), 0, 255).astype(np.uint8)
    jpeg = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes()
    ds = make_ds(pixels, bits_stored=8, WindowCenter=128, WindowWidth=256)  # an identity window
    ds.PixelData = encapsulate([jpeg])  # left with a defined length, as some converters write it
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    image = decode_dicom(_without_syntax(ds) if infer else to_bytes(ds), display="window")
    assert image.header["TransferSyntaxUID"] == JPEGBaseline8Bit and image.syntax_inferred == infer
    expected = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert np.abs(image.pixels.astype(int) - expected).max() <= 1


@pytest.mark.parametrize(
    "name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_expb.dcm"]
)
def test_shipped_lossless_variants_equal_the_uncompressed_original(name: str) -> None:
    reference = decode_dicom(TEST_FILES / "MR_small.dcm").pixels
    assert (decode_dicom(TEST_FILES / name).pixels == reference).all()


def test_reduced_jpeg2000_decode_is_close_to_the_exact_path() -> None:
    pixels = chest_like(256, 192)
    data = to_bytes(make_ds(pixels, WindowCenter=1800, WindowWidth=2400), compress=JPEG2000Lossless)
    fast = decode_dicom(data, max_side=64)
    exact = decode_dicom(data, max_side=64, reduced_decode=False)
    assert fast.pixels.shape == exact.pixels.shape == (64, 48)
    assert (fast.width, fast.height) == (192, 256)
    assert np.abs(fast.pixels.astype(int) - exact.pixels.astype(int)).mean() < 1


def test_reduced_jpeg2000_decode_keeps_the_pixel_grid() -> None:
    pixels = np.full((256, 192), 100, np.uint16)
    pixels[100:140, 60:100] = 4000  # centroid at source (119.5, 79.5)
    data = to_bytes(make_ds(pixels), compress=JPEG2000Lossless)

    def centroid(image: np.ndarray) -> np.ndarray:
        weights = np.clip(image.astype(float) - image[-1, -1], 0, None)  # background (far corner) → 0
        rows, cols = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
        return np.array([(rows * weights).sum(), (cols * weights).sum()]) / weights.sum()

    fast = centroid(decode_dicom(data, max_side=32).pixels)
    exact = centroid(decode_dicom(data, max_side=32, reduced_decode=False).pixels)
    assert np.abs(fast - exact).max() < 0.1  # output pixels; without re-centring it is 7/16
    assert np.abs(exact - (np.array([119.5, 79.5]) + 0.5) / 8 + 0.5).max() < 0.05


# --- transfer syntax inference -------------------------------------------------------------


def _without_syntax(ds: Dataset, implicit: bool = False) -> bytes:
    del ds.file_meta.TransferSyntaxUID
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=implicit, little_endian=True, enforce_file_format=False)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("compress", "implicit", "expected"),
    [
        (None, False, ExplicitVRLittleEndian),
        (None, True, ImplicitVRLittleEndian),
        (RLELossless, False, RLELossless),
        (JPEG2000Lossless, False, "1.2.840.10008.1.2.4.91"),  # J2K magic → the general JPEG 2000 UID
    ],
)
def test_missing_transfer_syntax_is_inferred(compress: str | None, implicit: bool, expected: str) -> None:
    if compress and not _encodable(compress):
        pytest.skip("no encoder")
    pixels = chest_like()
    reference = decode_dicom(to_bytes(make_ds(pixels))).pixels
    ds = make_ds(pixels)
    if compress:
        ds.compress(compress)
    image = decode_dicom(_without_syntax(ds, implicit))
    assert image.syntax_inferred
    assert image.header["TransferSyntaxUID"] == expected
    assert (image.pixels == reference).all()


@pytest.mark.parametrize("name", ["MR_small_jpeg_ls_lossless.dcm", "JPGExtended.dcm"])
def test_jpeg_family_syntax_inferred_from_the_codestream(name: str) -> None:
    original = decode_dicom(TEST_FILES / name)
    ds = pydicom.dcmread(TEST_FILES / name)
    image = decode_dicom(_without_syntax(ds))
    assert image.syntax_inferred and (image.pixels == original.pixels).all()


# --- rejects -------------------------------------------------------------------------------


def test_no_pixel_data_is_rejected() -> None:
    ds = make_ds(chest_like())
    del ds.PixelData
    with pytest.raises(Rejected) as caught:
        decode_dicom(to_bytes(ds))
    assert caught.value.reason == "dicom_no_pixels"


@pytest.mark.parametrize("data", [b"", b"not a dicom file at all" * 20, b"\x89PNG\r\n\x1a\n" + bytes(300)])
def test_non_dicom_bytes_are_rejected(data: bytes) -> None:
    with pytest.raises(Rejected) as caught:
        decode_dicom(data)
    assert caught.value.reason == "dicom_invalid"


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(Rejected) as caught:
        decode_dicom(tmp_path / "absent.dcm")
    assert caught.value.reason == "image_unreadable"


def test_truncated_pixel_data_names_the_transfer_syntax() -> None:
    data = to_bytes(make_ds(chest_like()))
    with pytest.raises(Rejected) as caught:
        decode_dicom(data[:-1000])
    assert caught.value.reason == "dicom_decode_failed"
    assert caught.value.detail.startswith("Explicit VR Little Endian: ")


def test_colour_is_rejected() -> None:
    ds = make_ds(np.zeros((4, 4), np.uint8), bits_stored=8)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.PixelData = bytes(4 * 4 * 3)
    with pytest.raises(Rejected) as caught:
        decode_dicom(to_bytes(ds))
    assert caught.value.reason == "dicom_unsupported"


# --- header, sizes, sources ----------------------------------------------------------------


def test_header_is_a_whitelist_without_patient_data(tmp_path: Path) -> None:
    ds = make_ds(chest_like(), PixelSpacing=[0.139, 0.139], ViewPosition="PA")
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^Jane", "PID-12345", "19700101"
    ds.InstitutionName, ds.AccessionNumber = "General Hospital", "ACC-999"
    path = tmp_path / "x.dcm"
    path.write_bytes(to_bytes(ds))
    image = decode_dicom(path)
    assert tuple(image.header) == HEADER_FIELDS
    assert image.header == {
        "Rows": 96,
        "Columns": 80,
        "PixelSpacing": [0.139, 0.139],
        "ImagerPixelSpacing": None,
        "PhotometricInterpretation": "MONOCHROME2",
        "BitsStored": 12,
        "ViewPosition": "PA",
        "TransferSyntaxUID": ExplicitVRLittleEndian,
    }
    text = repr(image.header)
    for secret in ("Doe", "PID-12345", "1970", "General Hospital", "ACC-999"):
        assert secret not in text


def test_max_side_resizes_but_keeps_the_original_size() -> None:
    image = decode_dicom(to_bytes(make_ds(chest_like(96, 80))), max_side=48)
    assert image.pixels.shape == (48, 40) and image.pixels.dtype == np.uint8
    assert (image.width, image.height) == (80, 96)
    assert image.raster.original_width == 80 and image.raster.original_height == 96


# --- every DICOM that pydicom ships in its wheel -------------------------------------------

SHIPPED = sorted(p for p in TEST_FILES.rglob("*") if p.is_file())
REASONS = {"dicom_invalid", "dicom_no_pixels", "dicom_unsupported", "dicom_decode_failed", "dicom_lut_invalid"}


def _reference(path: Path) -> np.ndarray | None:
    """pydicom's own float64 modality LUT + VOI (windowing) on the first frame, scaled to 0–255."""
    from pydicom.pixels import apply_modality_lut, apply_windowing, pixel_array

    ds = pydicom.dcmread(path, force=True)
    if "VOILUTSequence" in ds:
        return None
    arr = apply_modality_lut(pixel_array(ds, index=0), ds).astype(np.float64)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        y_min, y_max = 0, 2**ds.BitsStored - 1
        if ds.PixelRepresentation == 1:
            y_min, y_max = -(2 ** (ds.BitsStored - 1)), 2 ** (ds.BitsStored - 1) - 1
        if "RescaleSlope" in ds and "RescaleIntercept" in ds:
            y_min, y_max = (y * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for y in (y_min, y_max))
        ref = (apply_windowing(arr, ds) - y_min) / (y_max - y_min) * 255
    else:
        ref = (arr - arr.min()) / max(arr.max() - arr.min(), 1e-9) * 255
    return 255 - ref if ds.PhotometricInterpretation == "MONOCHROME1" else ref


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom's own warnings in the reference decode
@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(TEST_FILES)) for p in SHIPPED])
def test_shipped_file_decodes_or_is_rejected_cleanly(path: Path) -> None:
    try:
        image = decode_dicom(path, display="window")
    except Rejected as exc:
        assert exc.reason in REASONS and exc.detail
        return
    assert image.pixels.dtype == np.uint8
    assert image.pixels.shape == (image.header["Rows"], image.header["Columns"])
    reference = _reference(path)
    if reference is not None:
        assert np.abs(image.pixels - reference).max() <= 1.0  # the LUT agrees with float64 per pixel
        if np.ptp(reference) > 1:
            assert np.ptp(image.pixels) > 0
            stretched = (reference - reference.min()) / np.ptp(reference) * 255.0
            assert np.abs(decode_dicom(path).pixels - stretched).max() <= 1.0  # and the default stretch


def test_shipped_files_cover_every_codec() -> None:
    decoded = {}
    for path in SHIPPED:
        with contextlib.suppress(Rejected):
            decoded[path.name] = decode_dicom(path).header["TransferSyntaxUID"]
    syntaxes = set(decoded.values())
    assert {"1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"} <= syntaxes  # RLE, J2K
    assert {"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.51"} <= syntaxes  # JLS, JPEG
