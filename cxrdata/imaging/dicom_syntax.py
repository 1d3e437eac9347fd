"""Infer a missing (0002,0010) Transfer Syntax UID (seen in VinDr-CXR, FORMATS.md §4.2).

Native pixel data takes the syntax the dataset itself was parsed with (implicit/explicit VR,
little/big endian). Encapsulated pixel data is recognised from the first fragment's magic bytes.
"""

from __future__ import annotations

from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments

_J2K_CODESTREAM = b"\xff\x4f\xff\x51"
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_JPEG_SOI = b"\xff\xd8"
# JPEG start-of-frame markers: which process (and so which DICOM syntax) the stream uses.
_JPEG_SOF = {
    0xC0: uid.JPEGBaseline8Bit,
    0xC1: uid.JPEGExtended12Bit,
    0xC2: uid.JPEGExtended12Bit,
    0xC3: uid.JPEGLossless,
    0xF7: uid.JPEGLSLossless,
    0xF9: uid.JPEGLSLossless,
}
_NATIVE = {
    (True, True): uid.ImplicitVRLittleEndian,
    (False, True): uid.ExplicitVRLittleEndian,
    (False, False): uid.ExplicitVRBigEndian,
}


def infer_transfer_syntax(ds: Dataset) -> uid.UID | None:
    """Best guess at the syntax ``ds`` was written in, or None when nothing fits."""
    element = ds.data_element("PixelData")
    if element is not None and (element.is_undefined_length or _starts_with_item(element.value)):
        try:
            items = generate_fragments(element.value)
            next(items, b"")  # the Basic Offset Table item
            fragment = next(items, b"")
        except Exception:  # malformed item tags: not encapsulated data we can name
            return None
        return syntax_from_fragment(fragment)
    implicit, little = ds.original_encoding
    if implicit is None or little is None:
        return None
    return _NATIVE.get((implicit, little))


def _starts_with_item(value: object) -> bool:
    """Encapsulated data written with a defined length still starts with an (FFFE,E000) item."""
    return isinstance(value, bytes) and value[:4] == b"\xfe\xff\x00\xe0"


def syntax_from_fragment(fragment: bytes) -> uid.UID | None:
    """The transfer syntax whose codestream starts like ``fragment``."""
    if fragment.startswith(_J2K_CODESTREAM) or fragment.startswith(_JP2_SIGNATURE):
        return uid.JPEG2000
    if fragment.startswith(_JPEG_SOI):
        return _jpeg_process(fragment)
    if _is_rle_header(fragment):
        return uid.RLELossless
    return None


def _jpeg_process(stream: bytes) -> uid.UID:
    """Walk the JPEG markers to the first SOF; baseline when none is found."""
    i, n = 2, len(stream)
    while i + 4 <= n:
        if stream[i] != 0xFF:
            break
        marker = stream[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in _JPEG_SOF:
            return _JPEG_SOF[marker]
        i += 2 + int.from_bytes(stream[i + 2 : i + 4], "big")
    return uid.JPEGBaseline8Bit


def _is_rle_header(fragment: bytes) -> bool:
    """DICOM RLE: a 64-byte header of 16 little-endian offsets, the first segment at 64."""
    if len(fragment) < 64:
        return False
    segments = int.from_bytes(fragment[:4], "little")
    return 1 <= segments <= 15 and int.from_bytes(fragment[4:8], "little") == 64
